import DomainConfig
import Testing

@testable import Toolstack

@Suite struct StateFlagsTests {
    @Test func flagsFollowTheSeedsLetters() {
        // The seed: r running, b blocking, p paused, s shutdown, c crashed.
        #expect(DomainInfo(domid: 1, isRunning: true).state.description == "r-----")
        #expect(DomainInfo(domid: 1, isBlocked: true).state.description == "-b----")
        #expect(DomainInfo(domid: 1, isPaused: true, isBlocked: true).state.description == "-bp---")
        #expect(
            DomainInfo(domid: 1, isShutdown: true, shutdownReason: .poweroff).state.description
                == "---s--")
        #expect(
            DomainInfo(domid: 1, isShutdown: true, shutdownReason: .reboot).state.description
                == "---s--")
        #expect(
            DomainInfo(domid: 1, isShutdown: true, shutdownReason: .suspend).state.description
                == "---s--")
        #expect(
            DomainInfo(domid: 1, isShutdown: true, shutdownReason: .crash).state.description
                == "----c-")
        #expect(
            DomainInfo(domid: 1, isDying: true, isShutdown: true, shutdownReason: .crash)
                .state.description == "----cd")
        #expect(DomainInfo(domid: 1).state.description == "------")
        // The reason counts only once the domain has shut down.
        #expect(
            DomainInfo(domid: 1, isRunning: true, shutdownReason: .crash).state.description
                == "r-----")
    }

    @Test func parsesItsOwnForm() {
        for text in ["r-----", "-b----", "--p---", "---s--", "----c-", "-----d", "rbpscd"] {
            #expect(DomainStateFlags(parsing: text)?.description == text)
        }
        for bad in ["", "r", "r------", "x-----", "br----", "R-----"] {
            #expect(DomainStateFlags(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func shutdownReasonsAreXensCodes() {
        #expect(ShutdownReason(rawValue: 0) == .poweroff)
        #expect(ShutdownReason(rawValue: 1) == .reboot)
        #expect(ShutdownReason(rawValue: 2) == .suspend)
        #expect(ShutdownReason(rawValue: 3) == .crash)
        #expect(ShutdownReason(rawValue: 4) == .watchdog)
        #expect(ShutdownReason(rawValue: 5) == .softReset)
        #expect(ShutdownReason(rawValue: 6) == nil)
    }
}

@Suite struct ListTableTests {
    @Test func classicTable() {
        let domains = [
            DomainSummary(
                name: "Domain-0", domid: 0, memoryMiB: 1024, vcpus: 2,
                state: DomainStateFlags(running: true), cpuTime: 123_449_999_999),
            DomainSummary(
                name: "debian1", domid: 12, memoryMiB: 256, vcpus: 1,
                state: DomainStateFlags(blocked: true), cpuTime: 50_000_000),
            DomainSummary(
                name: "netbsd", domid: 13, memoryMiB: 64, vcpus: 1,
                state: DomainStateFlags(paused: true), cpuTime: 0),
        ]
        let expected = """
            Name                                        ID   Mem VCPUs      State   Time(s)
            Domain-0                                     0  1024     2     r-----     123.4
            debian1                                     12   256     1     -b----       0.1
            netbsd                                      13    64     1     --p---       0.0

            """
        #expect(XmListTable.render(domains) == expected)
    }

    @Test func longNamesPushColumnsButStayOnOneLine() {
        let name = String(repeating: "x", count: 45)
        let table = XmListTable.render([
            DomainSummary(
                name: name, domid: 1, memoryMiB: 1, vcpus: 1, state: DomainStateFlags(),
                cpuTime: 0)
        ])
        let lines = table.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[1].hasPrefix(name + "     1"))
    }

    @Test func cpuSecondsRound() {
        func seconds(_ nanoseconds: UInt64) -> String {
            DomainSummary(
                name: "", domid: 0, memoryMiB: 0, vcpus: 0, state: DomainStateFlags(),
                cpuTime: nanoseconds
            ).cpuSeconds
        }
        #expect(seconds(0) == "0.0")
        #expect(seconds(49_999_999) == "0.0")
        #expect(seconds(50_000_000) == "0.1")
        #expect(seconds(1_950_000_000) == "2.0")
        #expect(seconds(3_600_000_000_000) == "3600.0")
    }

    @Test func longFormIsOneExpressionPerDomain() throws {
        let spec = try Harness.demoSpec()
        let text = XmListTable.renderLong([
            DomainSummary(
                name: "demo", domid: 3, memoryMiB: 128, vcpus: 1,
                state: DomainStateFlags(blocked: true), cpuTime: 0, spec: spec)
        ])
        let parsed = try XendWire.parse(text)
        #expect(parsed.head == "domain")
        #expect(parsed.field("domid")?.intValue == 3)
        #expect(parsed.field("state")?.stringValue == "-b----")
        #expect(parsed.field("on_crash")?.stringValue == "restart")
    }
}

@Suite struct LifecyclePolicyTests {
    func spec(poweroff: ShutdownAction, reboot: ShutdownAction, crash: ShutdownAction) throws
        -> DomainSpec
    {
        var spec = try Harness.demoSpec()
        spec.onPoweroff = poweroff
        spec.onReboot = reboot
        spec.onCrash = crash
        return spec
    }

    @Test func actionFollowsTheReason() throws {
        let spec = try spec(poweroff: .destroy, reboot: .restart, crash: .preserve)
        #expect(LifecyclePolicy.action(for: .poweroff, in: spec) == .destroy)
        #expect(LifecyclePolicy.action(for: .reboot, in: spec) == .restart)
        #expect(LifecyclePolicy.action(for: .softReset, in: spec) == .restart)
        #expect(LifecyclePolicy.action(for: .crash, in: spec) == .preserve)
        #expect(LifecyclePolicy.action(for: .watchdog, in: spec) == .preserve)
        #expect(LifecyclePolicy.action(for: nil, in: spec) == .preserve)
        #expect(LifecyclePolicy.action(for: .suspend, in: spec) == nil)
    }

    @Test func decisionTable() throws {
        let cases: [(ShutdownAction, LifecycleDecision)] = [
            (.destroy, .destroy), (.restart, .restart), (.preserve, .preserve),
            (.renameRestart, .renameRestart),
        ]
        for (action, expected) in cases {
            let spec = try spec(poweroff: action, reboot: action, crash: action)
            for reason in [ShutdownReason.poweroff, .reboot, .crash, .watchdog, .softReset] {
                #expect(
                    LifecyclePolicy.decide(
                        reason: reason, spec: spec, uptimeSeconds: 600, saving: false)
                        == expected, "\(reason) with \(action)")
            }
        }
    }

    @Test func restartLoopsAreRefused() throws {
        let spec = try spec(poweroff: .destroy, reboot: .restart, crash: .renameRestart)
        #expect(
            LifecyclePolicy.decide(reason: .crash, spec: spec, uptimeSeconds: 3, saving: false)
                == .refuseRestart(uptimeSeconds: 3))
        #expect(
            LifecyclePolicy.decide(reason: .reboot, spec: spec, uptimeSeconds: 19, saving: false)
                == .refuseRestart(uptimeSeconds: 19))
        #expect(
            LifecyclePolicy.decide(reason: .reboot, spec: spec, uptimeSeconds: 20, saving: false)
                == .restart)
        // Destroy is never held back.
        #expect(
            LifecyclePolicy.decide(reason: .poweroff, spec: spec, uptimeSeconds: 0, saving: false)
                == .destroy)
        #expect(
            LifecyclePolicy.decide(
                reason: .reboot, spec: spec, uptimeSeconds: 3, saving: false,
                minimumRestartSeconds: 0) == .restart)
    }

    @Test func saveAndSuspendAreLeftAlone() throws {
        let spec = try spec(poweroff: .destroy, reboot: .destroy, crash: .destroy)
        #expect(
            LifecyclePolicy.decide(reason: .suspend, spec: spec, uptimeSeconds: 600, saving: false)
                == .ignore)
        #expect(
            LifecyclePolicy.decide(reason: .crash, spec: spec, uptimeSeconds: 600, saving: true)
                == .ignore)
    }
}
