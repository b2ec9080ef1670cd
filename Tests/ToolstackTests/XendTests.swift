import DomainConfig
import Foundation
import InMemoryXenStore
import Testing
import XenStore

@testable import Toolstack

/// xend over a fake hypervisor and the in-memory xenstored: creation,
/// rollback, lifecycle actions, save/restore, recovery, hostile input.
@Suite struct XendTests {
    func created(_ response: XendResponse) throws -> UInt32 {
        guard case .created(let domid, _) = response else {
            Issue.record("expected a created domain, got \(response)")
            throw ToolstackError.remote("not created")
        }
        return domid
    }

    func failure(_ response: XendResponse) -> (kind: String, message: String)? {
        if case .failure(let kind, let message) = response { return (kind, message) }
        return nil
    }

    /// Polls until `condition` holds (xend acts on watch events).
    func eventually(_ what: String, _ condition: () async -> Bool) async {
        for _ in 0..<500 {
            if await condition() { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func createWritesTheTreeAndIntroducesTheDomain() async throws {
        let harness = try Harness()
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        let home = "/local/domain/\(domid)"
        #expect(harness.store.value(at: "\(home)/name") == "demo")
        #expect(harness.store.value(at: "\(home)/console/port") == "\(20 + domid)")
        #expect(harness.store.value(at: "\(home)/store/ring-ref") == "\(0x1000 + domid)")
        #expect(harness.store.isIntroduced(domid))
        // Written level by level: children inherit their directory's list.
        let readOnly = [
            XenStorePermission(domid: 0, access: .none),
            XenStorePermission(domid: domid, access: .read),
        ]
        for path in ["\(home)/name", "\(home)/cpu/0/availability", "\(home)/console/port"] {
            #expect(harness.store.permissions(of: path) == readOnly, "\(path)")
        }
        #expect(
            harness.store.permissions(of: "\(home)/control/shutdown")
                == [XenStorePermission(domid: domid, access: .none)])
        let uuid = try #require(harness.store.value(at: "\(home)/vm"))
        #expect(harness.store.value(at: "\(uuid)/name") == "demo")
        let domain = try #require(harness.hypervisor.state.withLock { $0.domains[domid] })
        #expect(!domain.info.isPaused)
        #expect(domain.image?.cmdline == "console=hvc0")
        #expect(domain.image?.memoryMiB == 128)
        #expect(domain.creation.maxMemoryKiB == 128 * 1024)
        #expect(DomainUUID(bytes: domain.creation.handle)?.description == String(uuid.dropFirst(4)))

        guard case .domains(let list) = await harness.response(.list(domain: nil)) else {
            Issue.record("no list")
            return
        }
        #expect(list.map(\.name) == ["Domain-0", "demo"])
        #expect(list[1].state.description == "-b----")
        #expect(list[1].memoryMiB == 128)
        #expect(list[1].spec?.name == "demo")
    }

    @Test func namesAreUniqueAndResolveByNameOrId() async throws {
        let harness = try Harness()
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: true)))
        let second = await harness.response(
            .create(try Harness.demoSpec(), skipDevices: false, paused: false))
        #expect(failure(second)?.kind == "name-in-use")
        #expect(harness.hypervisor.domids == [0, domid])
        // Dom0's name is taken too.
        let dom0 = await harness.response(
            .create(try Harness.demoSpec(name: "Domain-0"), skipDevices: false, paused: false))
        #expect(failure(dom0)?.kind == "name-in-use")

        #expect(await harness.response(.unpause(domain: "\(domid)")) == .done)
        #expect(harness.hypervisor.state.withLock { $0.domains[domid]?.info.isPaused } == false)
        #expect(await harness.response(.pause(domain: "demo")) == .done)
        #expect(harness.hypervisor.state.withLock { $0.domains[domid]?.info.isPaused } == true)
        #expect(failure(await harness.response(.pause(domain: "nope")))?.kind == "no-such-domain")
        #expect(failure(await harness.response(.pause(domain: "0")))?.kind == "not-allowed")
        #expect(
            failure(await harness.response(.destroy(domain: "Domain-0")))?.kind == "not-allowed")
    }

    @Test func devicesNeedARunningBackend() async throws {
        let harness = try Harness()
        var spec = try Seed.spec(Seed.debian1)
        spec.kernel = CommandLine.arguments[0]
        let refused = await harness.response(.create(spec, skipDevices: false, paused: false))
        let (kind, message) = try #require(failure(refused))
        #expect(kind == "backend-missing")
        #expect(message.contains("no vbd backend runs yet"))
        #expect(harness.hypervisor.domids == [0], "nothing was created")

        let domid = try created(
            await harness.response(.create(spec, skipDevices: true, paused: false)))
        #expect(harness.store.children(of: "/local/domain/\(domid)/device") == ["suspend"])
        #expect(harness.store.children(of: "/local/domain/0/backend") == nil)
    }

    @Test func aBackendThatNeverAnswersRollsEverythingBack() async throws {
        let harness = try Harness(settings: Harness.settings(backendTimeout: 1))
        // Announced, but nobody moves the devices out of state 1.
        try harness.store.write(StorePaths.backendMarker("vbd"), "\(getpid())")
        try harness.store.write(StorePaths.backendMarker("vif"), "\(getpid())")
        var spec = try Seed.spec(Seed.debian1)
        spec.kernel = CommandLine.arguments[0]
        let response = await harness.response(.create(spec, skipDevices: false, paused: false))
        #expect(failure(response)?.kind == "backend-timeout")
        #expect(harness.hypervisor.domids == [0])
        let destroyed = harness.hypervisor.state.withLock { $0.destroyed }
        #expect(destroyed.count == 1)
        let domid = try #require(destroyed.first)
        #expect(harness.store.value(at: "/local/domain/\(domid)") == nil)
        #expect(harness.paths(under: "/local/domain/0/backend/vbd/\(domid)").isEmpty)
        #expect(harness.paths(under: "/local/domain/0/backend/vif/\(domid)").isEmpty)
        #expect(harness.paths(under: "/vm").count <= 1, "no /vm/UUID left")
        #expect(harness.store.value(at: "/proxenos/xend/domain/\(domid)") == nil)
    }

    @Test func aFailedBuildLeavesNothing() async throws {
        let harness = try Harness()
        harness.hypervisor.state.withLock {
            $0.failBuild = .builder(step: "parsing the kernel image", detail: "not an ELF")
        }
        let response = await harness.response(
            .create(try Harness.demoSpec(), skipDevices: false, paused: false))
        #expect(failure(response)?.message.contains("not an ELF") == true)
        #expect(harness.hypervisor.domids == [0])
        #expect(harness.store.children(of: "/local/domain")?.contains("1") != true)
    }

    @Test func aMissingKernelFailsBeforeAnyDomainExists() async throws {
        let harness = try Harness()
        var spec = try Harness.demoSpec()
        spec.kernel = "/nonexistent/vmlinuz"
        let response = await harness.response(.create(spec, skipDevices: false, paused: false))
        #expect(failure(response)?.message.contains("/nonexistent/vmlinuz") == true)
        #expect(harness.hypervisor.state.withLock { $0.nextDomid } == 1)
    }

    @Test func destroyRemovesEveryNode() async throws {
        let harness = try Harness()
        let backends = try harness.runBackends()
        defer { backends.cancel() }
        var spec = try Seed.spec(Seed.debian1)
        spec.kernel = CommandLine.arguments[0]
        let domid = try created(
            await harness.response(.create(spec, skipDevices: false, paused: false)))
        #expect(!harness.paths(under: "/local/domain/0/backend/vbd/\(domid)").isEmpty)
        #expect(await harness.response(.destroy(domain: "debian1")) == .done)
        #expect(harness.hypervisor.domids == [0])
        #expect(harness.store.value(at: "/local/domain/\(domid)") == nil)
        #expect(harness.paths(under: "/local/domain/0/backend/vbd/\(domid)").isEmpty)
        #expect(harness.paths(under: "/local/domain/0/backend/vif/\(domid)").isEmpty)
        #expect(harness.store.children(of: "/vm")?.isEmpty ?? true)
        #expect(harness.store.value(at: "/proxenos/xend/domain/\(domid)") == nil)
    }

    @Test func lifecycleActionsOnShutdown() async throws {
        let harness = try Harness()
        let monitor = Task { try await harness.xend.monitor() }
        defer { monitor.cancel() }
        // on_poweroff = destroy
        let first = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        harness.hypervisor.shutDown(first, reason: .poweroff)
        try await harness.client.releaseDomain(first)  // fires @releaseDomain
        await eventually("the powered-off domain and its nodes to go") {
            harness.hypervisor.domids == [0]
                && harness.store.value(at: "/local/domain/\(first)") == nil
        }

        // on_crash = restart: a new domain with the same name and UUID.
        let second = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        let uuid = harness.store.value(at: "/local/domain/\(second)/vm")
        harness.hypervisor.shutDown(second, reason: .crash)
        try await harness.client.releaseDomain(second)
        await eventually("the crashed domain to restart") {
            let ids = harness.hypervisor.domids
            return ids.count == 2 && !ids.contains(second)
        }
        let third = try #require(harness.hypervisor.domids.last)
        await eventually("the restarted domain's tree") {
            harness.store.value(at: "/local/domain/\(third)/name") == "demo"
        }
        #expect(harness.store.value(at: "/local/domain/\(third)/vm") == uuid)
        #expect(harness.store.value(at: "/local/domain/\(second)") == nil)
    }

    @Test func preserveAndRenameRestart() async throws {
        let harness = try Harness()
        let monitor = Task { try await harness.xend.monitor() }
        defer { monitor.cancel() }
        let kept = try created(
            await harness.response(
                .create(
                    try Harness.demoSpec(name: "kept", arguments: ["on_crash=preserve"]),
                    skipDevices: false, paused: false)))
        harness.hypervisor.shutDown(kept, reason: .crash)
        try await harness.client.releaseDomain(kept)
        try await Task.sleep(for: .milliseconds(200))
        #expect(harness.hypervisor.domids.contains(kept))
        guard case .domains(let list) = await harness.response(.list(domain: "kept")) else {
            Issue.record("no list")
            return
        }
        #expect(list.first?.state.description == "----c-")
        #expect(await harness.response(.destroy(domain: "kept")) == .done)

        let old = try created(
            await harness.response(
                .create(
                    try Harness.demoSpec(name: "phoenix", arguments: ["on_reboot=rename-restart"]),
                    skipDevices: false, paused: false)))
        harness.hypervisor.shutDown(old, reason: .reboot)
        try await harness.client.releaseDomain(old)
        await eventually("the fresh phoenix") { harness.hypervisor.domids.count == 3 }
        let renamed = try #require(harness.store.value(at: "/local/domain/\(old)/name"))
        #expect(renamed.hasPrefix("Domain-"))
        let fresh = try #require(harness.hypervisor.domids.last)
        await eventually("the fresh phoenix's tree") {
            harness.store.value(at: "/local/domain/\(fresh)/name") == "phoenix"
        }
        #expect(
            harness.store.value(at: "/local/domain/\(fresh)/vm")
                != harness.store.value(at: "/local/domain/\(old)/vm"))
    }

    @Test func restartLoopIsBroken() async throws {
        var settings = Harness.settings()
        settings.minimumRestartSeconds = 3600
        let harness = try Harness(settings: settings)
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        harness.hypervisor.shutDown(domid, reason: .crash)
        await harness.xend.reconcile()
        #expect(harness.hypervisor.domids == [0], "destroyed, not restarted")
    }

    @Test("after xenstored's death (PID 1's marker) xend refuses create, restore and restarts")
    func xenstoreLossRefusesNewDomains() async throws {
        let directory = TemporaryDirectory()
        let marker = directory.path + "/xenstore-lost"
        var settings = Harness.settings()
        settings.xenstoreLossMarker = marker
        let harness = try Harness(settings: settings)
        let running = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))

        try "at dom0 uptime 812.40 s (it was killed by signal 9 (SIGKILL))\n".write(
            toFile: marker, atomically: true, encoding: .utf8)
        let refused = await harness.response(
            .create(try Harness.demoSpec(name: "second"), skipDevices: false, paused: false))
        #expect(failure(refused)?.kind == "xenstore-lost")
        let message = failure(refused)?.message ?? ""
        #expect(
            message.contains(
                "restarted at dom0 uptime 812.40 s (it was killed by signal 9 (SIGKILL))"))
        #expect(message.contains("until the appliance reboots"))
        #expect(harness.hypervisor.domids == [0, running], "nothing was built")
        let restore = await harness.response(.restore(path: marker, paused: false))
        #expect(failure(restore)?.kind == "xenstore-lost")

        // A guest that crashes now is not restarted (it would be one more
        // guest nobody can manage), even with on_crash=restart.
        harness.hypervisor.shutDown(running, reason: .crash)
        await harness.xend.reconcile()
        #expect(harness.hypervisor.domids == [0], "destroyed by on_crash, not built again")
    }

    @Test func shutdownWaitsAndDestroysAfterTheDeadline() async throws {
        let harness = try Harness()
        let monitor = Task { try await harness.xend.monitor() }
        defer { monitor.cancel() }
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        // A guest that obeys.
        let obeying = Task {
            while harness.store.value(at: "/local/domain/\(domid)/control/shutdown") != "poweroff" {
                try await Task.sleep(for: .milliseconds(5))
            }
            harness.hypervisor.shutDown(domid, reason: .poweroff)
            try await harness.client.releaseDomain(domid)
        }
        let response = await harness.response(
            .shutdown(domain: "demo", reboot: false, wait: true, timeoutSeconds: 10))
        #expect(response == .done)
        try await obeying.value
        #expect(harness.hypervisor.domids == [0])

        // A guest that ignores the request is destroyed after the deadline.
        let stubborn = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        let late = await harness.response(
            .shutdown(domain: "demo", reboot: false, wait: true, timeoutSeconds: 1))
        #expect(failure(late)?.kind == "guest-timeout")
        #expect(failure(late)?.message.contains("destroyed") == true)
        #expect(!harness.hypervisor.domids.contains(stubborn))
        #expect(harness.store.value(at: "/local/domain/\(stubborn)") == nil)
    }

    /// Guests that power off once asked (`control/shutdown` = poweroff),
    /// as Linux does, until cancelled.
    func obey(_ harness: Harness, _ domids: [UInt32]) -> Task<Void, Never> {
        Task {
            var left = Set(domids)
            while !left.isEmpty && !Task.isCancelled {
                for domid in left
                where harness.store.value(at: "/local/domain/\(domid)/control/shutdown")
                    == "poweroff"
                {
                    harness.hypervisor.shutDown(domid, reason: .poweroff)
                    try? await harness.client.releaseDomain(domid)
                    left.remove(domid)
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    @Test("host shutdown: obeying guests stop (on_poweroff=restart too), the rest is destroyed")
    func hostShutdownStopsEveryGuest() async throws {
        let harness = try Harness()
        let monitor = Task { try await harness.xend.monitor() }
        defer { monitor.cancel() }
        func create(_ name: String, _ arguments: [String] = []) async throws -> UInt32 {
            try created(
                await harness.response(
                    .create(
                        try Harness.demoSpec(name: name, arguments: arguments),
                        skipDevices: false, paused: false)))
        }
        let plain = try await create("plain")
        let phoenix = try await create("phoenix", ["on_poweroff=restart"])
        let stubborn = try await create("stubborn")
        let crashed = try await create("crashed", ["on_crash=preserve"])
        harness.hypervisor.shutDown(crashed, reason: .crash)
        try await harness.client.releaseDomain(crashed)
        await eventually("the crashed guest to be preserved") {
            guard case .domains(let list) = await harness.response(.list(domain: "crashed"))
            else { return false }
            return list.first?.state.crashed == true
        }
        let guests = obey(harness, [plain, phoenix])
        defer { guests.cancel() }

        let started = ContinuousClock.now
        let response = await harness.response(
            .shutdownAll(reboot: false, timeoutSeconds: 1, host: true))
        let took = ContinuousClock.now - started
        guard case .outcomes(let outcomes) = response else {
            Issue.record("expected outcomes, got \(response)")
            return
        }
        #expect(outcomes.map(\.domid) == [plain, phoenix, stubborn, crashed])
        #expect(outcomes.map(\.name) == ["plain", "phoenix", "stubborn", "crashed"])
        for outcome in outcomes.prefix(2) {
            guard case .stopped(let seconds) = outcome.result else {
                Issue.record("\(outcome.name) did not stop cleanly: \(outcome)")
                continue
            }
            #expect(seconds < 1)
            #expect(
                outcome.description.hasPrefix("\(outcome.name) (\(outcome.domid)): shut down in "))
        }
        #expect(outcomes[2].result == .destroyed(deadline: 1))
        #expect(
            outcomes[2].description
                == "stubborn (\(stubborn)): destroyed after the 1 s deadline (no shutdown by then)")
        #expect(outcomes[3].result == .wasStopped)
        #expect(outcomes.map(\.isClean) == [true, true, false, true])
        #expect(took >= .seconds(1) && took < .seconds(10))
        // Nothing left, nothing restarted (phoenix's on_poweroff=restart).
        #expect(harness.hypervisor.domids == [0])
        for domid in [plain, phoenix, stubborn, crashed] {
            #expect(harness.store.value(at: "/local/domain/\(domid)") == nil)
        }
        // And nothing starts any more.
        let late = await harness.response(
            .create(try Harness.demoSpec(name: "late"), skipDevices: false, paused: false))
        #expect(failure(late)?.kind == "host-shutdown")
        #expect(harness.hypervisor.domids == [0])
    }

    @Test("xm shutdown -a -w outside a host shutdown: on_poweroff applies, creating goes on")
    func shutdownAllKeepsLifecyclePolicy() async throws {
        let harness = try Harness()
        let monitor = Task { try await harness.xend.monitor() }
        defer { monitor.cancel() }
        let phoenix = try created(
            await harness.response(
                .create(
                    try Harness.demoSpec(name: "phoenix", arguments: ["on_poweroff=restart"]),
                    skipDevices: false, paused: false)))
        let guests = obey(harness, [phoenix])
        defer { guests.cancel() }
        let response = await harness.response(
            .shutdownAll(reboot: false, timeoutSeconds: 10, host: false))
        guard case .outcomes(let outcomes) = response, outcomes.count == 1 else {
            Issue.record("expected one outcome, got \(response)")
            return
        }
        #expect(outcomes[0].isClean)
        await eventually("phoenix restarted as a new domain") {
            let ids = harness.hypervisor.domids
            return ids.count == 2 && !ids.contains(phoenix)
        }
        let other = await harness.response(
            .create(try Harness.demoSpec(name: "other"), skipDevices: false, paused: false))
        #expect(failure(other) == nil)
        // No guest at all: an empty answer.
        let empty = try Harness()
        #expect(
            await empty.response(.shutdownAll(reboot: false, timeoutSeconds: 1, host: true))
                == .outcomes([]))
    }

    @Test func shutdownAllTravelsOverTheWire() throws {
        let request = XendRequest.shutdownAll(reboot: true, timeoutSeconds: 45, host: true)
        #expect(try XendRequest(XendWire.parse(XendWire.render(request.sxp))) == request)
        #expect(throws: ToolstackError.self) {
            try XendRequest(XendWire.parse("(shutdown-all (timeout -3))"))
        }
        let outcomes = XendResponse.outcomes([
            GuestStopOutcome(name: "a", domid: 3, result: .stopped(seconds: 4.25)),
            GuestStopOutcome(name: "b", domid: 4, reboot: true, result: .wasStopped),
            GuestStopOutcome(name: "c", domid: 5, result: .destroyed(deadline: 60)),
            GuestStopOutcome(name: "d", domid: 6, result: .failed("xc_domain_destroy: EPERM")),
        ])
        #expect(try XendResponse(XendWire.parse(XendWire.render(outcomes.sxp))) == outcomes)
        #expect(throws: ToolstackError.self) {
            try XendResponse(
                XendWire.parse("(ok (outcomes (guest (name x) (domid 1) (result gone))))"))
        }
    }

    @Test func saveAndRestore() async throws {
        let harness = try Harness()
        let directory = TemporaryDirectory()
        let file = directory.path + "/demo.save"
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        let uuid = harness.store.value(at: "/local/domain/\(domid)/vm")
        // The guest suspends when asked.
        let guest = Task {
            while harness.store.value(at: "/local/domain/\(domid)/control/shutdown") != "suspend" {
                try await Task.sleep(for: .milliseconds(5))
            }
            harness.hypervisor.shutDown(domid, reason: .suspend)
        }
        #expect(await harness.response(.save(domain: "demo", path: file)) == .done)
        try await guest.value
        #expect(harness.hypervisor.domids == [0], "saved domains stop")
        #expect(harness.store.value(at: "/local/domain/\(domid)") == nil)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let (spec, size) = try SaveFile.parseHeader(bytes, path: file)
        #expect(spec.name == "demo")
        #expect(String(decoding: bytes[size...], as: UTF8.self) == "STREAM-\(domid)")

        let restored = try created(await harness.response(.restore(path: file, paused: false)))
        #expect(harness.store.value(at: "/local/domain/\(restored)/name") == "demo")
        #expect(harness.store.value(at: "/local/domain/\(restored)/vm") == uuid)
        #expect(harness.store.value(at: "/local/domain/\(restored)/store/ring-ref") == "\(0x3000)")
        #expect(harness.store.isIntroduced(restored))
        // Restoring again while it runs would duplicate the name.
        #expect(
            failure(await harness.response(.restore(path: file, paused: false)))?.kind
                == "name-in-use")
    }

    @Test func aGuestThatWillNotSuspendKeepsRunning() async throws {
        var settings = Harness.settings()
        settings.suspendTimeoutSeconds = 1
        let harness = try Harness(settings: settings)
        let directory = TemporaryDirectory()
        let file = directory.path + "/demo.save"
        let domid = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        let response = await harness.response(.save(domain: "demo", path: file))
        #expect(failure(response)?.kind == "guest-timeout")
        #expect(harness.hypervisor.domids == [0, domid])
        #expect(!FileManager.default.fileExists(atPath: file), "no half-written file")
        #expect(harness.store.value(at: "/local/domain/\(domid)/control/shutdown") == "")
        // It can still be destroyed (the save no longer holds it).
        #expect(await harness.response(.destroy(domain: "demo")) == .done)
    }

    @Test func badSaveFilesAreRefused() async throws {
        let harness = try Harness()
        let directory = TemporaryDirectory()
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("foreign", Array("LinuxGuestRecord".utf8)),
            ("short", SaveFile.magic + [0, 0, 1]),
            ("huge", SaveFile.magic + [0x7f, 0xff, 0xff, 0xff]),
            ("garbage", SaveFile.magic + [0, 0, 0, 5] + Array("(vm (".utf8)),
        ]
        for (name, bytes) in cases {
            let path = directory.path + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let response = await harness.response(.restore(path: path, paused: false))
            #expect(failure(response)?.kind == "save-file", "\(name)")
        }
        #expect(harness.hypervisor.domids == [0])
    }

    @Test func aRestartedXendAdoptsItsDomains() async throws {
        let harness = try Harness()
        let backends = try harness.runBackends()
        defer { backends.cancel() }
        var spec = try Seed.spec(Seed.debian1)
        spec.kernel = CommandLine.arguments[0]
        let domid = try created(
            await harness.response(.create(spec, skipDevices: false, paused: false)))
        let gone = try created(
            await harness.response(
                .create(try Harness.demoSpec(), skipDevices: false, paused: false)))
        // xend "restarts" while `gone` is destroyed behind its back and a
        // hostile or damaged record appears.
        try harness.hypervisor.destroy(gone)
        try harness.store.write("/proxenos/xend/domain/77/config", "(vm (name")
        try harness.store.write("/proxenos/xend/domain/junk/config", "x")

        let second = Xend(
            hypervisor: harness.hypervisor, store: try harness.store.connect(),
            settings: Harness.settings())
        await second.recover()
        guard case .domains(let list) = await second.handle(.list(domain: nil)) else {
            Issue.record("no list")
            return
        }
        #expect(list.map(\.name) == ["Domain-0", "debian1"])
        #expect(list[1].spec?.disks.count == 3)
        #expect(harness.hypervisor.state.withLock { $0.domains[domid]?.info.isPaused } == false)
        #expect(
            harness.store.value(at: "/local/domain/\(gone)") == nil,
            "the vanished domain's nodes went")
        // It manages what it adopted.
        #expect(await second.handle(.destroy(domain: "debian1")) == .done)
        #expect(harness.paths(under: "/local/domain/0/backend/vbd/\(domid)").isEmpty)
    }

    @Test func infoAndDmesg() async throws {
        let harness = try Harness()
        guard case .info(let pairs) = await harness.response(.info) else {
            Issue.record("no info")
            return
        }
        let info = Dictionary(pairs, uniquingKeysWith: { a, _ in a })
        #expect(info["xen_major"] == "4")
        #expect(info["total_memory"] == "2048")
        #expect(info["nr_cpus"] == "2")
        #expect(await harness.response(.dmesg(clear: false)) == .text("(XEN) hello\n"))
    }

    @Test func serverAnswersOverTheSocket() async throws {
        let harness = try Harness()
        let directory = TemporaryDirectory()
        let path = directory.path + "/xend.sock"
        let server = try XendServer(path: path, xend: harness.xend, logger: .init(label: "test"))
        try server.start()
        let client = XendClient(socketPath: path, connectTimeoutSeconds: 5)
        let response = try await offload { () throws(ToolstackError) in
            try client.send(.list(domain: nil))
        }
        guard case .domains(let list) = response else {
            Issue.record("no list: \(response)")
            return
        }
        #expect(list.first?.name == "Domain-0")
        let missing = try await offload { () throws(ToolstackError) in
            try client.send(.pause(domain: "ghost"))
        }
        #expect(failure(missing)?.kind == "no-such-domain")
        // The socket is for root only.
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
    }
}

@Suite struct ConfigErrorTests {
    /// A malformed config fails in xm, before xend sees it, with its file
    /// and line.
    @Test func errorsCarryLineNumbers() {
        let text = """
            kernel = "/boot/vmlinuz"
            memory = 128
            name = "demo
            """
        do {
            _ = try Seed.spec(text, file: "/etc/xen/broken")
            Issue.record("the config was accepted")
        } catch let error as DomainConfigError {
            #expect(error.location?.line == 3)
            #expect(error.description.hasPrefix("/etc/xen/broken:3"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        do {
            _ = try Seed.spec("kernel = '/k'\nmemory = 'lots'\n", file: "/etc/xen/x")
            Issue.record("the config was accepted")
        } catch let error as DomainConfigError {
            #expect(error.description.contains("/etc/xen/x:2"))
            #expect(error.key == "memory")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func specCodecRoundTripsTheSeedConfigs() throws {
        for text in [Seed.debian1, Seed.netbsd, Seed.freebsd] {
            var spec = try Seed.spec(text)
            spec.warnings = []
            spec.uuid = "12345678-9abc-def0-1234-56789abcdef0"
            let decoded = try SpecCodec.decode(
                try XendWire.parse(XendWire.render(SpecCodec.encode(spec))))
            #expect(decoded == spec)
        }
    }

    @Test func specCodecRejectsInconsistentSpecs() throws {
        let base = SpecCodec.encode(try Harness.demoSpec())
        func replacing(_ key: String, _ value: DomainSXP) -> DomainSXP {
            .list(
                [.atom("vm")]
                    + base.tail.map { $0.head == key ? .list([.atom(key), value]) : $0 })
        }
        let bad = [
            replacing("name", .atom("")), replacing("name", .atom("12")),
            replacing("name", .atom("a/b")), replacing("kernel", .atom("relative")),
            replacing("memory", .integer(0)), replacing("maxmem", .integer(1)),
            replacing("vcpus", .integer(0)), replacing("on_crash", .atom("explode")),
            .list([.atom("vm")]),
        ]
        for value in bad {
            #expect(throws: ToolstackError.self, "\(XendWire.render(value))") {
                try SpecCodec.decode(value)
            }
        }
    }
}
