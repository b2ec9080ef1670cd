import Synchronization
import Testing
import XenBus
import XenBusTesting

/// Faults reported through a device context.
final class FaultLog: Sendable {
    let faults = Mutex<[BackendFault]>([])

    var all: [BackendFault] { faults.withLock { $0 } }
}

/// One device with a guest, a store, grants and event channels, driven step
/// by step (no watches: each test calls what a watch event would).
final class DeviceHarness {
    let layout = FakeDeviceLayout(frontendDomain: DomainID(1), deviceID: 51712)
    let store = InMemoryXenBusStore()
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()
    let driver: RecordingDriver
    let guest: FakeFrontend
    let device: BackendDevice<RecordingDriver>
    let faults = FaultLog()

    init(
        trigger: FrontendConnectTrigger = .initialisedOrConnected,
        backendNodes: [String: String] = ["params": "/dev/null", "mode": "w"]
    ) throws {
        driver = try RecordingDriver(trigger: trigger, grants: grants, events: events)
        guest = try FakeFrontend(layout: layout, store: store, grants: grants, events: events)
        layout.create(in: store, backendNodes: backendNodes)
        let faults = self.faults
        device = BackendDevice(
            driver: driver, store: store, homePath: layout.backendHome,
            key: BackendDeviceKey(frontendDomain: layout.frontendDomain, deviceID: layout.deviceID),
            faultSink: { fault in faults.faults.withLock { $0.append(fault) } })
    }

    func backend(_ node: String) -> String? { store.value("\(layout.backendPath)/\(node)") }
    var state: String? { backend("state") }
    var errorText: String? { store.value(layout.errorNode) }

    /// The guest publishes a ring and moves to `state`; the backend reacts.
    func guestConnects(
        pageOrder: UInt32? = nil, state: XenbusState = .initialised
    ) async throws {
        try guest.publishRing(pageOrder: pageOrder)
        guest.setState(state)
        await device.frontendChanged()
    }

    /// Nothing of a connection is left: no mapping, no bound backend port.
    var nothingLeaked: Bool {
        grants.liveMappings == 0 && driver.connection == nil
            && !(1...8).contains { events.isBound(domain: DomainID(0), port: EventChannelPort($0)) }
    }
}

@Suite("backend device state machine")
struct BackendDeviceTests {
    @Test("handshake: features, InitWait, rings mapped, Connected")
    func connect() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        #expect(h.state == "2")
        #expect(h.backend("feature-flush-cache") == "1")
        #expect(h.backend("max-ring-page-order") == "2")
        let writes = h.store.writes.map(\.path)
        let feature = try #require(
            writes.firstIndex(of: "\(h.layout.backendPath)/feature-flush-cache"))
        let initWait = try #require(writes.lastIndex(of: "\(h.layout.backendPath)/state"))
        #expect(feature < initWait, "features are published before InitWait")

        try await h.guestConnects()
        #expect(h.state == "4")
        #expect(h.device.phase == .connected)
        #expect(h.backend("sectors") == "2048")
        #expect(h.grants.liveMappings == 1)
        let connection = try #require(h.driver.connection)
        #expect(connection.abi == .x86Abi64)
        #expect(h.driver.calls == ["probe", "connect"])

        // The data path works over what was mapped and bound.
        var front = try FrontRing<TestRequest, TestResponse>(
            initializing: try #require(h.guest.ring).bytes)
        try front.enqueueRequest(TestRequest(id: 9))
        if front.pushRequests() { try h.guest.channel.notify(try #require(h.guest.port)) }
        #expect(try connection.binding.channel.pending() == connection.binding.port)
        #expect(try connection.ring.nextRequest()?.id == 9)

        // Frontend Connected afterwards (blkfront does this) changes nothing.
        h.guest.setState(.connected)
        await h.device.frontendChanged()
        #expect(h.driver.calls == ["probe", "connect"])
    }

    @Test("multi-page ring: ring-page-order and ring-ref0..3")
    func multiPage() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects(pageOrder: 2)
        #expect(h.state == "4")
        #expect(h.driver.connection?.pages == 4)
        #expect(
            h.driver.connection?.ring.geometry.entryCount == 512, "(16384 - 64) / 24 = 680 → 512")
    }

    @Test("close and reconnect: Closing, Closed, Initialising, InitWait, Connected again")
    func reconnect() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.guest.setState(.closing)
        await h.device.frontendChanged()
        #expect(h.state == "5")
        #expect(h.grants.liveMappings == 1, "the data path serves until the frontend is Closed")
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        #expect(h.state == "6")
        #expect(h.nothingLeaked)
        #expect(!h.device.isRetired, "online is 1: the device may reconnect")

        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        #expect(h.state == "2")
        try await h.guestConnects()
        #expect(h.state == "4")
        #expect(h.driver.calls == ["probe", "connect", "disconnect", "probe", "connect"])
        #expect(h.grants.liveMappings == 1)
    }

    @Test("frontend reset while connected: disconnect and offer InitWait again")
    func frontendReset() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        #expect(h.state == "2")
        #expect(h.nothingLeaked)
    }

    @Test("frontend vanishes while connected: disconnect, Closed, retired")
    func frontendVanishes() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.store.delete("/local/domain/1")
        await h.device.frontendChanged()
        #expect(h.state == "6")
        #expect(h.device.isRetired)
        #expect(h.nothingLeaked)
        // Later events are ignored.
        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        #expect(h.state == "6")
    }

    @Test("frontend writes Unknown (0): treated as vanished")
    func frontendUnknown() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        h.guest.setState(.unknown)
        await h.device.frontendChanged()
        #expect(h.state == "6")
        #expect(h.device.isRetired)
    }

    @Test("closed while offline (unplug): retired, no reconnect")
    func offlineClose() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.store.set("\(h.layout.backendPath)/online", "0")
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        #expect(h.state == "6")
        #expect(h.device.isRetired)
        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        #expect(h.state == "6")
    }

    @Test("netfront style: Initialising straight to Connected is a handshake, not a jump")
    func netfrontStyle() async throws {
        let h = try DeviceHarness(trigger: .connected)
        await h.device.start()
        try h.guest.publishRing()
        h.guest.setState(.initialised)
        await h.device.frontendChanged()
        #expect(h.state == "2", "a .connected driver waits for Connected")
        h.guest.setState(.connected)
        await h.device.frontendChanged()
        #expect(h.state == "4")
    }

    @Test("faults of an old connection are ignored; of the live one, fatal")
    func staleFaults() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.driver.reportLastFault(.guestProtocol("first connection"))
        let stale = try #require(h.faults.all.first)
        #expect(stale.connectionID == 1)
        // Reconnect, then the old worker's fault arrives late.
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        try await h.guestConnects()
        #expect(h.state == "4")
        await h.device.handle(stale)
        #expect(h.state == "4")
        #expect(h.device.lastError == nil)
        h.driver.reportLastFault(.guestProtocol("second connection"))
        let live = try #require(h.faults.all.last)
        #expect(live.connectionID == 2)
        await h.device.handle(live)
        #expect(h.state == "5")
        #expect(h.errorText == "22 guest protocol violation: second connection")
        #expect(h.nothingLeaked)
    }

    @Test("a data-path fault closes the device with an error node")
    func dataPathFault() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        await h.device.fail(.ringProducerOverflow(producer: 99, base: 0, ringSize: 32))
        #expect(h.state == "5")
        #expect(h.nothingLeaked)
        #expect(h.errorText?.hasPrefix("22 frontend provided bogus ring producer index 99") == true)
        // The frontend closes; the device follows and may reconnect, and a
        // successful connect clears the stale error.
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        #expect(h.state == "6")
        h.guest.setState(.initialising)
        await h.device.frontendChanged()
        try await h.guestConnects()
        #expect(h.state == "4")
        #expect(h.errorText == nil)
        #expect(h.device.lastError == nil)
    }

    // MARK: hostile and broken values

    /// Drives a frontend that publishes a ring, then lets `mutate` spoil it,
    /// and checks the device ends Closing with `expected` in its error node.
    func expectFatal(
        _ expected: XenBusError, sourceLocation: SourceLocation = #_sourceLocation,
        _ mutate: (DeviceHarness) throws -> Void
    ) async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try h.guest.publishRing()
        try mutate(h)
        h.guest.setState(.initialised)
        await h.device.frontendChanged()
        #expect(h.state == "5", sourceLocation: sourceLocation)
        #expect(h.device.lastError == expected, sourceLocation: sourceLocation)
        #expect(h.errorText == expected.fatalText, sourceLocation: sourceLocation)
        #expect(h.nothingLeaked, sourceLocation: sourceLocation)
        // The frontend gives up; the backend ends Closed.
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        #expect(h.state == "6", sourceLocation: sourceLocation)
    }

    static let frontend = "/local/domain/1/device/vbd/51712"

    @Test(
        "ring-ref that is not a number", arguments: ["abc", "-1", "4294967296", "", " 12", "0x10"])
    func badRingRef(value: String) async throws {
        try await expectFatal(
            .frontendNodeInvalid(
                path: "\(Self.frontend)/ring-ref", value: value,
                expected: "a grant reference (decimal, 32 bits)")
        ) { h in h.guest.setNode("ring-ref", value) }
    }

    @Test("event channel out of range", arguments: ["999999999", "-1", "0", "131072", "x"])
    func badEventChannel(value: String) async throws {
        try await expectFatal(
            .frontendNodeInvalid(
                path: "\(Self.frontend)/event-channel", value: value,
                expected: "an event channel port from 1 to 131071")
        ) { h in h.guest.setNode("event-channel", value) }
    }

    @Test("ring page order above what we advertised")
    func badPageOrder() async throws {
        try await expectFatal(
            .frontendNodeInvalid(
                path: "\(Self.frontend)/ring-page-order", value: "9",
                expected: "a ring page order from 0 to 2")
        ) { h in h.guest.setNode("ring-page-order", "9") }
    }

    @Test("a missing node")
    func missingNode() async throws {
        try await expectFatal(.frontendNodeMissing(path: "\(Self.frontend)/event-channel")) { h in
            h.store.delete("\(Self.frontend)/event-channel")
        }
        let error = XenBusError.frontendNodeMissing(path: "\(Self.frontend)/event-channel")
        #expect(error.fatalText == "2 reading \(Self.frontend)/event-channel: node missing")
    }

    @Test("an unknown protocol")
    func badProtocol() async throws {
        try await expectFatal(
            .frontendNodeInvalid(
                path: "\(Self.frontend)/protocol", value: "sparc-abi",
                expected: "x86_32-abi, x86_64-abi or arm-abi")
        ) { h in h.guest.setNode("protocol", "sparc-abi") }
    }

    @Test("a ring-ref the guest never granted")
    func ungrantedRef() async throws {
        try await expectFatal(
            .grantRefused(domain: DomainID(1), ref: GrantRef(4000), status: .badGrantRef)
        ) { h in h.guest.setNode("ring-ref", "4000") }
    }

    @Test("an event channel port that was not offered to us: ring unmapped again")
    func unofferedPort() async throws {
        try await expectFatal(
            .eventChannel(operation: "bind interdomain 1:77", errno: .invalidArgument)
        ) { h in h.guest.setNode("event-channel", "77") }
    }

    @Test(
        "state garbage from the frontend",
        arguments: ["banana", "4x", "", "-4", "99", "4 "])
    func stateGarbage(value: String) async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.guest.setNode("state", value)
        await h.device.frontendChanged()
        let expected = XenBusError.frontendStateInvalid(
            path: "\(Self.frontend)/state", value: value)
        #expect(h.state == "5")
        #expect(h.errorText == expected.fatalText)
        #expect(h.nothingLeaked)
    }

    @Test("Reconfiguring is not supported", arguments: [XenbusState.reconfiguring, .reconfigured])
    func reconfiguring(state: XenbusState) async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.guest.setState(state)
        await h.device.frontendChanged()
        #expect(h.state == "5")
        #expect(
            h.device.lastError
                == .frontendStateUnsupported(path: "\(Self.frontend)/state", state: state))
    }

    @Test("state jump: frontend already Connected when the backend adopts it")
    func jumpAtAdoption() async throws {
        let h = try DeviceHarness()
        try h.guest.publishRing()
        h.guest.setState(.connected)
        await h.device.start()
        #expect(h.state == "5")
        #expect(
            h.device.lastError
                == .frontendStateJump(
                    path: "\(Self.frontend)/state", frontend: .connected, backend: .initialising))
        #expect(h.driver.calls == [], "no probe, no connect")
        #expect(h.errorText?.hasPrefix("22 frontend at") == true)
    }

    @Test("state jump: Closed straight back to Connected")
    func jumpAfterClosed() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        h.guest.setState(.closed)
        await h.device.frontendChanged()
        #expect(h.state == "6")
        h.guest.setState(.connected)
        await h.device.frontendChanged()
        #expect(h.state == "5")
        #expect(
            h.device.lastError
                == .frontendStateJump(
                    path: "\(Self.frontend)/state", frontend: .connected, backend: .closed))
        #expect(h.nothingLeaked)
    }

    @Test(
        "toolstack faults: missing params, bad frontend-id, frontend path elsewhere, frontend missing"
    )
    func toolstackFaults() async throws {
        let noParams = try DeviceHarness(backendNodes: [:])
        await noParams.device.start()
        #expect(noParams.state == "5")
        #expect(
            noParams.device.lastError
                == .backendNodeMissing(path: "\(noParams.layout.backendPath)/params"))

        let badID = try DeviceHarness()
        badID.store.set("\(badID.layout.backendPath)/frontend-id", "2")
        await badID.device.start()
        #expect(badID.state == "5")
        #expect(badID.device.frontendPath == nil)

        let elsewhere = try DeviceHarness()
        elsewhere.store.set(
            "\(elsewhere.layout.backendPath)/frontend", "/local/domain/2/device/vbd/1")
        await elsewhere.device.start()
        #expect(elsewhere.state == "5")

        let traversal = try DeviceHarness()
        traversal.store.set("\(traversal.layout.backendPath)/frontend", "/local/domain/1/../0/x")
        await traversal.device.start()
        #expect(traversal.state == "5")

        let gone = try DeviceHarness()
        gone.store.delete("/local/domain/1")
        await gone.device.start()
        #expect(gone.state == "5")
        #expect(gone.device.lastError == .frontendMissing(path: Self.frontend))
        #expect(gone.errorText?.hasPrefix("2 missing other end") == true)
    }

    @Test("removal and shutdown disconnect without writing, removal drops the error node")
    func removeAndShutdown() async throws {
        let h = try DeviceHarness()
        await h.device.start()
        try await h.guestConnects()
        let writes = h.store.writes.count
        await h.device.shutdown()
        #expect(h.nothingLeaked)
        #expect(h.store.writes.count == writes)

        let r = try DeviceHarness()
        await r.device.start()
        r.guest.setNode("ring-ref", "abc")
        r.guest.setState(.initialised)
        await r.device.frontendChanged()
        #expect(r.errorText != nil)
        await r.device.remove()
        #expect(r.errorText == nil)
        #expect(r.device.isRetired)
    }
}

@Suite("backend lifecycle table")
struct BackendLifecycleTests {
    static let path = "/local/domain/1/device/vbd/0/state"

    func step(
        _ backend: BackendPhase, _ frontend: FrontendObservation,
        _ trigger: FrontendConnectTrigger = .initialisedOrConnected
    ) -> LifecycleStep {
        BackendLifecycle.step(
            backend: backend, frontend: frontend, trigger: trigger, frontendStatePath: Self.path)
    }

    @Test("the transitions Linux blkback/netback make")
    func table() {
        #expect(step(.initialising, .state(.initialising)) == .offerInitWait)
        #expect(step(.initWait, .state(.initialising)) == .stay)
        #expect(step(.initWait, .state(.initialised)) == .connect)
        #expect(step(.initWait, .state(.initialised), .connected) == .stay)
        #expect(step(.initWait, .state(.connected), .connected) == .connect)
        #expect(step(.initWait, .state(.connected)) == .connect)
        #expect(step(.connected, .state(.connected)) == .stay)
        #expect(step(.connected, .state(.initialised)) == .stay)
        #expect(step(.connected, .state(.closing)) == .beginClosing)
        #expect(step(.connected, .state(.closed)) == .close)
        #expect(step(.closing, .state(.closed)) == .close)
        #expect(step(.closing, .state(.connected)) == .stay)
        #expect(step(.closed, .state(.initialising)) == .offerInitWait)
        #expect(step(.closed, .state(.closed)) == .stay)
        #expect(step(.connected, .state(.initialising)) == .offerInitWait)
        #expect(step(.connected, .vanished) == .vanish)
        #expect(step(.initialising, .state(.closed)) == .offerInitWait)
    }

    @Test("errors: garbage, unsupported states, jumps, missing frontend")
    func errors() {
        #expect(
            step(.connected, .invalid("x"))
                == .fail(.frontendStateInvalid(path: Self.path, value: "x")))
        #expect(
            step(.connected, .state(.reconfiguring))
                == .fail(.frontendStateUnsupported(path: Self.path, state: .reconfiguring)))
        #expect(
            step(.initialising, .state(.connected))
                == .fail(
                    .frontendStateJump(
                        path: Self.path, frontend: .connected, backend: .initialising)))
        #expect(
            step(.closed, .state(.initialised))
                == .fail(
                    .frontendStateJump(path: Self.path, frontend: .initialised, backend: .closed)))
        #expect(
            step(.initialising, .vanished)
                == .fail(.frontendMissing(path: "/local/domain/1/device/vbd/0")))
    }

    @Test("every state value is classified without trapping")
    func observations() {
        #expect(FrontendObservation(storeValue: nil) == .vanished)
        #expect(FrontendObservation(storeValue: "0") == .vanished)
        #expect(FrontendObservation(storeValue: "4") == .state(.connected))
        #expect(FrontendObservation(storeValue: "9") == .invalid("9"))
        #expect(FrontendObservation(storeValue: "04") == .state(.connected))
        #expect(
            FrontendObservation(storeValue: "99999999999999999999999")
                == .invalid("99999999999999999999999"))
        for phase in [BackendPhase.initialising, .initWait, .connected, .closing, .closed] {
            for value in (0...9).map(String.init) + ["", "x", "\u{0}"] {
                _ = step(phase, FrontendObservation(storeValue: value))
            }
        }
    }

    @Test("error node text escapes control characters and is bounded")
    func quoting() {
        let hostile = "a\nb'" + String(repeating: "z", count: 500)
        let text = XenBusError.frontendStateInvalid(path: "/p", value: hostile).fatalText
        #expect(!text.contains("\n"))
        #expect(text.count < 200)
        #expect(text.hasPrefix("22 frontend wrote 'a\\nb\\'"))
    }
}
