import Testing
import XenBus
import XenBusTesting

/// Polls `condition` until it holds or `seconds` pass (generous: the test
/// process runs suites in parallel on two cores).
func eventually(
    _ seconds: Double = 30, _ condition: () async -> Bool
) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return await condition()
}

@Suite("backend bus: scan, watches, mark and sweep")
struct BackendBusTests {
    let store = InMemoryXenBusStore()
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()

    func layout(_ domain: UInt16, _ device: UInt32) -> FakeDeviceLayout {
        FakeDeviceLayout(frontendDomain: DomainID(domain), deviceID: device)
    }

    func state(_ layout: FakeDeviceLayout) -> String? {
        store.value("\(layout.backendPath)/state")
    }

    @Test("adopts existing and new devices, connects through watches, sweeps vanished ones")
    func lifecycle() async throws {
        let driver = try RecordingDriver(grants: grants, events: events)
        let first = layout(1, 51712)
        let second = layout(1, 51728)
        let third = layout(2, 768)
        first.create(in: store, backendNodes: ["params": "a"])
        second.create(in: store, backendNodes: ["params": "b"])
        // A device a previous backend process left Connected whose frontend
        // reset meanwhile: adopted and offered InitWait again. Not ours to
        // drive: a state no backend writes, and junk names.
        let stale = layout(3, 5)
        stale.create(in: store, backendNodes: ["params": "c"])
        store.set("\(stale.backendPath)/state", "4")
        let odd = layout(3, 6)
        odd.create(in: store, backendNodes: ["params": "e"])
        store.set("\(odd.backendPath)/state", "7")
        store.set("/local/domain/0/backend/vbd/junk/1/state", "1")
        store.set("/local/domain/0/backend/vbd/4/junk/state", "1")

        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }

        #expect(await eventually { state(first) == "2" && state(second) == "2" })
        #expect(await eventually { state(stale) == "2" })
        #expect(state(odd) == "7")
        #expect(await bus.status().map(\.key.description) == ["1/51712", "1/51728", "3/5"])

        // A device added while running is adopted.
        third.create(in: store, backendNodes: ["params": "d"])
        #expect(await eventually { state(third) == "2" })

        // The guest connects; the frontend watch drives the handshake.
        let guest = try FakeFrontend(layout: first, store: store, grants: grants, events: events)
        try guest.publishRing()
        guest.setState(.initialised)
        #expect(await eventually { state(first) == "4" })
        #expect(grants.liveMappings == 1)
        #expect(await eventually { await bus.status().first?.phase == .connected })

        // The toolstack removes a connected device: disconnected and swept.
        let watchesBefore = store.watchCount
        store.delete(first.backendPath)
        #expect(await eventually { await bus.status().count == 3 })
        // The entry leaves the table before the device's task has torn it
        // down, so the teardown is awaited, not assumed.
        #expect(await eventually { grants.liveMappings == 0 })
        #expect(await eventually { driver.calls.filter { $0 == "disconnect" }.count == 1 })
        #expect(
            await eventually { store.watchCount == watchesBefore - 1 }, "frontend watch removed")
        #expect(store.value("\(first.backendPath)/state") == nil, "nothing written back")

        // A whole domain directory goes.
        store.delete("/local/domain/0/backend/vbd/2")
        #expect(
            await eventually { await bus.status().map(\.key.description) == ["1/51728", "3/5"] })

        // Re-created with the same key: adopted afresh.
        first.create(in: store, backendNodes: ["params": "a"])
        #expect(await eventually { state(first) == "2" })
        #expect(await bus.status().count == 3)

        running.cancel()
        try await running.value
        #expect(await bus.status().isEmpty)
    }

    @Test("a frontend that vanishes is cleaned up; a hostile one ends in Closing")
    func hostileAndVanishing() async throws {
        let driver = try RecordingDriver(grants: grants, events: events)
        let good = layout(1, 1)
        let bad = layout(2, 1)
        good.create(in: store, backendNodes: ["params": "a"])
        bad.create(in: store, backendNodes: ["params": "b"])
        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        #expect(await eventually { state(good) == "2" && state(bad) == "2" })

        let goodGuest = try FakeFrontend(layout: good, store: store, grants: grants, events: events)
        try goodGuest.publishRing()
        goodGuest.setState(.initialised)
        #expect(await eventually { state(good) == "4" })

        let badGuest = try FakeFrontend(layout: bad, store: store, grants: grants, events: events)
        try badGuest.publishRing()
        badGuest.setNode("ring-ref", "abc")
        badGuest.setState(.initialised)
        #expect(await eventually { state(bad) == "5" })
        #expect(store.value(bad.errorNode)?.contains("'abc' is not a grant reference") == true)

        // The connected guest's domain is destroyed.
        store.delete("/local/domain/1")
        #expect(await eventually { state(good) == "6" })
        #expect(grants.liveMappings == 0)
        #expect(await eventually { await bus.status().first?.isRetired == true })

        running.cancel()
        try await running.value
    }

    @Test("a data-path fault reported through the context closes the device")
    func reportedFault() async throws {
        let driver = try RecordingDriver(grants: grants, events: events)
        let device = layout(1, 7)
        device.create(in: store, backendNodes: ["params": "a"])
        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        let guest = try FakeFrontend(layout: device, store: store, grants: grants, events: events)
        #expect(await eventually { state(device) == "2" })
        try guest.publishRing()
        guest.setState(.initialised)
        #expect(await eventually { state(device) == "4" })
        #expect(driver.connection != nil)
        // The driver's worker would do this on a bad ring index.
        driver.reportLastFault(.guestProtocol("bad request"))
        #expect(await eventually { state(device) == "5" })
        #expect(store.value(device.errorNode) == "22 guest protocol violation: bad request")
        #expect(grants.liveMappings == 0)
        running.cancel()
        try await running.value
    }

    @Test("a frontend watch that ends is registered again and the device is not deaf")
    func frontendWatchRearmed() async throws {
        struct Lost: Error {}
        let driver = try RecordingDriver(grants: grants, events: events)
        let device = layout(1, 9)
        device.create(in: store, backendNodes: ["params": "a"])
        let guest = try FakeFrontend(layout: device, store: store, grants: grants, events: events)
        try guest.publishRing()
        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        #expect(await eventually { state(device) == "2" })
        let statePath = "\(device.frontendPath)/state"
        #expect(await eventually { store.failWatches(on: statePath, Lost()) == 1 })
        // While the watch is down the guest connects; the re-armed watch
        // (or the look taken when it is back) must still see it.
        guest.setState(.initialised)
        #expect(await eventually { state(device) == "4" })
        // And it keeps working afterwards.
        guest.setState(.closed)
        #expect(await eventually { state(device) == "6" })
        running.cancel()
        try await running.value
    }

    @Test("a lost store connection ends run with its error, devices shut down")
    func storeFailure() async throws {
        struct Lost: Error {}
        let driver = try RecordingDriver(grants: grants, events: events)
        let device = layout(1, 7)
        device.create(in: store, backendNodes: ["params": "a"])
        let guest = try FakeFrontend(layout: device, store: store, grants: grants, events: events)
        try guest.publishRing()
        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        #expect(await eventually { state(device) == "2" })
        guest.setState(.initialised)
        #expect(await eventually { state(device) == "4" })
        store.failWatches(Lost())
        await #expect(throws: Lost.self) { try await running.value }
        #expect(grants.liveMappings == 0)
        #expect(await bus.status().isEmpty)
    }
}
