import Testing

@testable import Init

private func spec(_ name: String, ready: String? = nil, restart: ServiceSpec.Restart = .withBackoff)
    -> ServiceSpec
{
    ServiceSpec(
        name: name, argv: ["/usr/bin/\(name)"], streams: .logFile("/var/log/\(name).log"),
        readyPath: ready, restart: restart)
}

@Suite struct BackoffPolicyTests {
    let policy = BackoffPolicy(
        initialDelay: .milliseconds(250), maximumDelay: .seconds(4), stableAfter: .seconds(10),
        giveUpAfter: 5)

    @Test func delaysDoubleUpToTheMaximum() {
        #expect(policy.delay(afterFastFailures: 0) == .milliseconds(250))
        #expect(policy.delay(afterFastFailures: 1) == .milliseconds(250))
        #expect(policy.delay(afterFastFailures: 2) == .milliseconds(500))
        #expect(policy.delay(afterFastFailures: 3) == .seconds(1))
        #expect(policy.delay(afterFastFailures: 5) == .seconds(4))
        #expect(policy.delay(afterFastFailures: 500) == .seconds(4))
    }

    @Test func fastFailuresAndGivingUp() {
        #expect(policy.isFastFailure(runTime: .seconds(9)))
        #expect(!policy.isFastFailure(runTime: .seconds(10)))
        #expect(!policy.shouldGiveUp(afterFastFailures: 4))
        #expect(policy.shouldGiveUp(afterFastFailures: 5))
    }

    @Test func giveUpAfterIsAtLeastOne() {
        #expect(BackoffPolicy(giveUpAfter: 0).giveUpAfter == 1)
    }
}

@Suite struct SupervisorTests {
    let always: (ServiceSpec) -> Bool = { _ in true }
    let never: (ServiceSpec) -> Bool = { _ in false }

    @Test func firstStartsWaitForReadiness() {
        var supervisor = Supervisor(services: [spec("store", ready: "/run/s"), spec("console")])
        var due = supervisor.dueStarts(now: .zero, isReady: never)
        #expect(due.names == ["store"])
        supervisor.didStart("store", pid: 10, now: .zero)
        due = supervisor.dueStarts(now: .seconds(1), isReady: never)
        #expect(due.names.isEmpty)
        #expect(supervisor.nextWakeup(now: .seconds(1), isReady: never) != nil)
        due = supervisor.dueStarts(now: .seconds(2), isReady: always)
        #expect(due.names == ["console"])
    }

    @Test func aServiceThatMayNotStartYetHoldsBackTheOnesAfterIt() {
        var supervisor = Supervisor(
            services: [spec("log"), spec("backend"), spec("xend"), spec("ssh")])
        let noRandomness: (ServiceSpec) -> Bool = { $0.name == "log" || $0.name == "ssh" }
        var due = supervisor.dueStarts(now: .zero, isReady: always, mayStart: noRandomness)
        #expect(due.names == ["log"])
        supervisor.didStart("log", pid: 10, now: .zero)
        // Looked at again at the poll interval while held back.
        #expect(
            supervisor.nextWakeup(now: .zero, isReady: always, mayStart: noRandomness)
                == Supervisor.readinessPollInterval)
        due = supervisor.dueStarts(now: .seconds(1), isReady: always, mayStart: noRandomness)
        #expect(due.names.isEmpty)
        due = supervisor.dueStarts(now: .seconds(2), isReady: always, mayStart: always)
        #expect(due.names == ["backend", "xend", "ssh"])
    }

    @Test func aRestartHeldBackIsLookedAtAgainAtThePollInterval() {
        var supervisor = Supervisor(services: [spec("a")])
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        supervisor.didStart("a", pid: 42, now: .zero)
        _ = supervisor.reap(pid: 42, status: .signaled(9), now: .seconds(60))
        let later = Duration.seconds(61)
        #expect(supervisor.dueStarts(now: later, isReady: always, mayStart: never).names.isEmpty)
        // Its restart time has passed: not now (a busy loop), but soon.
        #expect(
            supervisor.nextWakeup(now: later, isReady: always, mayStart: never)
                == later + Supervisor.readinessPollInterval)
        #expect(supervisor.dueStarts(now: later, isReady: always, mayStart: always).names == ["a"])
    }

    @Test func readinessTimeoutStartsTheRestWithANotice() {
        var supervisor = Supervisor(
            services: [spec("store", ready: "/run/s"), spec("console")],
            readinessTimeout: .seconds(5))
        _ = supervisor.dueStarts(now: .zero, isReady: never)
        supervisor.didStart("store", pid: 10, now: .zero)
        let due = supervisor.dueStarts(now: .seconds(6), isReady: never)
        #expect(due.names == ["console"])
        #expect(due.notices.count == 1)
        #expect(due.notices[0].contains("store is not ready"))
    }

    @Test func aCrashIsRestartedAfterTheInitialDelay() {
        var supervisor = Supervisor(services: [spec("a")])
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        supervisor.didStart("a", pid: 42, now: .zero)
        #expect(supervisor.serviceName(pid: 42) == "a")
        let notices = supervisor.reap(pid: 42, status: .signaled(9), now: .seconds(60))
        #expect(notices?.first?.contains("killed by signal 9 (SIGKILL)") == true)
        #expect(
            supervisor.service(named: "a")?.phase
                == .scheduled(at: .seconds(60) + .milliseconds(250)))
        #expect(supervisor.dueStarts(now: .seconds(60), isReady: always).names.isEmpty)
        #expect(
            supervisor.nextWakeup(now: .seconds(60), isReady: always)
                == .seconds(60) + .milliseconds(250))
        #expect(
            supervisor.dueStarts(now: .seconds(60) + .milliseconds(250), isReady: always).names
                == ["a"])
    }

    @Test("xenstored's death is reported as the loss it is, and it is still respawned")
    func xenstoredDeathIsALoss() throws {
        let xenstored = try #require(ServiceTable.dom0.first { $0.name == "xenstored" })
        let loss = try #require(xenstored.lossOnExit)
        #expect(loss.markerPath == ServiceTable.xenstoreLossMarker)
        var supervisor = Supervisor(services: [xenstored, spec("xend")])
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        supervisor.didStart("xenstored", pid: 7, now: .zero)
        let reaped = supervisor.reap(pid: 7, status: .signaled(9), now: .seconds(600))
        let notices = try #require(reaped)
        #expect(notices.count == 2)
        #expect(notices[0].hasPrefix("service xenstored was killed by signal 9"))
        #expect(notices[0].contains("every guest's xenstore connection are lost"))
        #expect(notices[0].contains("xend refuses new domains until the appliance reboots"))
        #expect(notices[1].contains("restarting in"))
        #expect(
            ServiceLoss.markerText(uptime: "600.00", status: .signaled(9))
                == "at dom0 uptime 600.00 s (it was killed by signal 9 (SIGKILL))\n")

        // Stopped for shutdown: nothing is lost that the shutdown did not mean.
        supervisor.didStart("xenstored", pid: 8, now: .seconds(601))
        _ = supervisor.beginShutdown()
        #expect(supervisor.reap(pid: 8, status: .exited(0), now: .seconds(700)) == [])

        // A service without a loss gets the plain notice only.
        var plain = Supervisor(services: [spec("a")])
        _ = plain.dueStarts(now: .zero, isReady: always)
        plain.didStart("a", pid: 9, now: .zero)
        #expect(plain.reap(pid: 9, status: .signaled(9), now: .seconds(60))?.count == 1)
    }

    @Test func repeatedFastFailuresBackOffThenGiveUp() {
        var supervisor = Supervisor(services: [spec("flaky")])
        var now: Duration = .zero
        var delays: [Duration] = []
        for pid in Int32(1)...5 {
            #expect(supervisor.dueStarts(now: now, isReady: always).names == ["flaky"])
            supervisor.didStart("flaky", pid: pid, now: now)
            now += .seconds(1)
            let notices = supervisor.reap(pid: pid, status: .exited(1), now: now) ?? []
            if case .scheduled(let at) = supervisor.service(named: "flaky")?.phase {
                delays.append(at - now)
                now = at
            } else {
                #expect(notices.last?.contains("giving up") == true)
            }
        }
        #expect(delays == [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)])
        #expect(supervisor.service(named: "flaky")?.phase == .gaveUp)
        #expect(supervisor.dueStarts(now: now + .seconds(100), isReady: always).names.isEmpty)
    }

    @Test func aStableRunForgetsEarlierFailures() {
        var supervisor = Supervisor(services: [spec("a")])
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        supervisor.didStart("a", pid: 1, now: .zero)
        _ = supervisor.reap(pid: 1, status: .exited(1), now: .seconds(1))
        _ = supervisor.dueStarts(now: .seconds(2), isReady: always)
        supervisor.didStart("a", pid: 2, now: .seconds(2))
        _ = supervisor.reap(pid: 2, status: .exited(1), now: .seconds(3))
        #expect(supervisor.service(named: "a")?.fastFailures == 2)
        _ = supervisor.dueStarts(now: .seconds(4), isReady: always)
        supervisor.didStart("a", pid: 3, now: .seconds(4))
        _ = supervisor.reap(pid: 3, status: .exited(0), now: .seconds(100))
        #expect(supervisor.service(named: "a")?.fastFailures == 0)
        #expect(
            supervisor.service(named: "a")?.phase
                == .scheduled(at: .seconds(100) + .milliseconds(250)))
    }

    @Test func foreverServicesNeverGiveUp() {
        var supervisor = Supervisor(services: [spec("shell", restart: .forever)])
        var now: Duration = .zero
        for pid in Int32(1)...20 {
            _ = supervisor.dueStarts(now: now, isReady: always)
            supervisor.didStart("shell", pid: pid, now: now)
            now += .milliseconds(10)
            _ = supervisor.reap(pid: pid, status: .exited(0), now: now)
            if case .scheduled(let at) = supervisor.service(named: "shell")?.phase { now = at }
        }
        #expect(supervisor.service(named: "shell")?.phase != .gaveUp)
    }

    @Test func spawnFailuresCountAsFastFailures() {
        var supervisor = Supervisor(
            services: [spec("missing")], policy: BackoffPolicy(giveUpAfter: 2))
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        var notices = supervisor.didFailToStart("missing", error: "No such file", now: .zero)
        #expect(notices.first?.contains("could not be started: No such file") == true)
        _ = supervisor.dueStarts(now: .seconds(1), isReady: always)
        notices = supervisor.didFailToStart("missing", error: "No such file", now: .seconds(1))
        #expect(supervisor.service(named: "missing")?.phase == .gaveUp)
        #expect(notices.last?.contains("giving up") == true)
    }

    @Test func orphansAreNotServices() {
        var supervisor = Supervisor(services: [spec("a")])
        #expect(supervisor.reap(pid: 999, status: .exited(0), now: .zero) == nil)
    }

    @Test func shutdownStopsInReverseOrderAndRestartsNothing() {
        var supervisor = Supervisor(services: [spec("a"), spec("b"), spec("c")])
        _ = supervisor.dueStarts(now: .zero, isReady: always)
        supervisor.didStart("a", pid: 1, now: .zero)
        supervisor.didStart("b", pid: 2, now: .zero)
        let stopping = supervisor.beginShutdown()
        #expect(stopping.map(\.name) == ["b", "a"])
        #expect(stopping.map(\.pid) == [2, 1])
        #expect(stopping.map(\.spec.stopSignal) == [15, 15])
        #expect(supervisor.reap(pid: 2, status: .signaled(15), now: .seconds(1)) == [])
        #expect(supervisor.service(named: "b")?.phase == .stopped)
        #expect(supervisor.service(named: "c")?.phase == .stopped)
        #expect(supervisor.dueStarts(now: .seconds(100), isReady: always).names.isEmpty)
        #expect(supervisor.nextWakeup(now: .seconds(100), isReady: always) == nil)
    }

    @Test func addedServicesStartOnce() {
        var supervisor = Supervisor(services: [spec("a")])
        supervisor.add(spec("shell", restart: .forever))
        supervisor.add(spec("shell"))
        #expect(supervisor.services.map(\.spec.name) == ["a", "shell"])
    }
}

@Suite struct ServiceTableTests {
    @Test func theDom0TableIsValid() {
        #expect(ServiceTable.validate(ServiceTable.dom0).isEmpty)
        // The system log before anything that logs through syslog(3).
        #expect(
            ServiceTable.dom0.map(\.name) == [
                "syslogd", "xenstored", "blkback", "consoled", "netback", "xend",
                "dropbear",
            ])
        #expect(ServiceTable.dom0.first?.readyPath == ServiceTable.syslogSocket)
        #expect(ServiceTable.dom0[1].readyPath == ServiceTable.xenstoredSocket)
        // SSH last, started by our sshd (which execs dropbear), and the ready
        // banner does not wait for it (it waits for provisioning).
        let ssh = ServiceTable.dom0.last
        #expect(ssh?.argv == ["/usr/sbin/sshd"])
        #expect(ssh?.readyPath == nil)
    }

    @Test func validationNamesEveryProblem() {
        let problems = ServiceTable.validate([
            spec("a"), spec("a"),
            ServiceSpec(name: "", argv: [], streams: .inherit),
            ServiceSpec(name: "rel", argv: ["bin/x"], streams: .inherit),
        ])
        #expect(problems.count == 4)
        #expect(problems.contains("service a is listed twice"))
        #expect(problems.contains("service rel: bin/x is not an absolute path"))
    }

    @Test func disablingServicesReportsUnknownNames() {
        let (services, unknown) = ServiceTable.enabled(
            [spec("a"), spec("b")], disabling: ["b", "zz"])
        #expect(services.map(\.name) == ["a"])
        #expect(unknown == ["zz"])
    }
}

@Suite struct ExitStatusTests {
    @Test func decodesWaitStatusWords() {
        #expect(ExitStatus(waitStatus: 0) == .exited(0))
        #expect(ExitStatus(waitStatus: 3 << 8) == .exited(3))
        #expect(ExitStatus(waitStatus: 9) == .signaled(9))
        #expect(ExitStatus(waitStatus: 0x80 | 11) == .signaled(11))  // core dumped
        #expect(ExitStatus.signaled(9).description == "was killed by signal 9 (SIGKILL)")
        #expect(ExitStatus.signaled(40).description == "was killed by signal 40")
        #expect(ExitStatus.exited(2).description == "exited with status 2")
    }
}

@Suite struct BannerTests {
    @Test func kmsgRecord() {
        #expect(
            Banner.kmsgSeconds(
                record: "6,339,4102213,-;Run /init as init process\n",
                text: "Run /init as init process") == 4.102213)
        #expect(Banner.kmsgSeconds(record: "6,340,4102300,-;other", text: "Run /init") == nil)
        #expect(Banner.kmsgSeconds(record: "garbage", text: "Run /init") == nil)
    }

    @Test func readyLine() {
        #expect(
            Banner.readyLine(uptime: 12.345, xen: "4.17.7", kernel: "6.1.0-56-amd64")
                == "proxenos ready in 12.35 s (Xen 4.17.7, Linux 6.1.0-56-amd64)")
        #expect(
            Banner.readyLine(uptime: nil, xen: nil, kernel: "k")
                == "proxenos ready in ? s (Xen unknown, Linux k)")
        #expect(
            Banner.readyLine(uptime: 8.391, initSeconds: 1.2, xen: "4.17.7", kernel: "k")
                == "proxenos ready in 8.39 s, init 1.20 s (Xen 4.17.7, Linux k)")
        #expect(Banner.twoDecimals(9.004) == "9.00")
        #expect(Banner.twoDecimals(0.5) == "0.50")
    }

    @Test func durationsForConsoleMessages() {
        #expect(format(.milliseconds(250)) == "0.25 s")
        #expect(format(.seconds(2)) == "2 s")
        #expect(format(.milliseconds(500)) == "0.5 s")
    }
}
