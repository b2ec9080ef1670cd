import BlockBackend
import DataPath
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

func eventually(_ seconds: Double = 30, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return await condition()
}

/// blkback on the backend bus with fake Xen: the xenbus handshake as
/// blkfront does it, data through the real worker, and a restart.
@Suite("blkback driver on the backend bus")
struct DriverTests {
    let store = InMemoryXenBusStore()
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()

    func driver(_ journals: String) -> BlockDriver {
        let events = self.events
        return BlockDriver(
            grants: grants,
            openEventChannel: { () throws(XenBusError) -> any EventChannel in
                try events.open(domain: DomainID(0))
            }, journalDirectory: journals)
    }

    @Test(
        "a file grown while connected: the ring takes the new size, then sectors and state are rewritten"
    )
    func onlineResize() async throws {
        let file = try temporaryFile(patternBytes(1 << 20, seed: 31))  // 2048 sectors
        defer { file.remove() }
        let journals = "/tmp/blkback-journal-resize-\(getpid())"
        let layout = FakeDeviceLayout(frontendDomain: DomainID(5), deviceID: 51728)
        layout.create(
            in: store,
            backendNodes: ["type": "file", "params": file.path, "mode": "w", "device-type": "disk"])
        let events = self.events
        let driver = BlockDriver(
            grants: grants,
            openEventChannel: { () throws(XenBusError) -> any EventChannel in
                try events.open(domain: DomainID(0))
            }, journalDirectory: journals, resizeInterval: .milliseconds(20))
        let running = Task { [store] in try await BackendBus(store: store, driver: driver).run() }
        func node(_ name: String) -> String? { store.value("\(layout.backendPath)/\(name)") }
        #expect(await eventually { node("state") == "2" })
        let guest = try FakeFrontend(layout: layout, store: store, grants: grants, events: events)
        let ringPages = try guest.publishRing(pageOrder: 0)
        var front = try FrontRing<BlkifRequest64, BlkifResponse64>(initializing: ringPages.bytes)
        guest.setState(.initialised)
        #expect(await eventually { node("state") == "4" })
        #expect(node("sectors") == "2048")
        let port = try #require(guest.port)
        let page = grants.grant(from: layout.frontendDomain, pages: 1, writable: true)
        func read(_ id: UInt64, at sector: UInt64) async throws -> BlkifResponse? {
            try front.enqueueRequest(
                BlkifRequest64(
                    rwRequest(BlkifOperation.read, id: id, sector: sector, refs: page.refs)))
            if front.pushRequests() { try guest.channel.notify(port) }
            var response: BlkifResponse?
            _ = await eventually {
                response = (try? front.nextResponse())??.response
                return response != nil
            }
            return response
        }
        #expect(try await read(1, at: 2048)?.status == BlkifStatus.error, "past the end")
        let stateWrites = store.writes.filter { $0.path == "\(layout.backendPath)/state" }.count
        #expect(truncate(file.path, 3 << 20) == 0)
        #expect(await eventually { node("sectors") == "6144" })
        #expect(
            await eventually {
                store.writes.filter { $0.path == "\(layout.backendPath)/state" }.count > stateWrites
            }, "state written Connected again, so blkfront re-reads sectors")
        #expect(node("state") == "4")
        #expect(try await read(2, at: 2048)?.status == BlkifStatus.okay, "the grown part")
        #expect(try await read(3, at: 6144)?.status == BlkifStatus.error, "still bounded")
        guest.setState(.closed)
        #expect(await eventually { node("state") == "6" })
        running.cancel()
        try await running.value
        rmdir(journals)
    }

    @Test("handshake, features, a write and a read, and a restart that adopts the ring")
    func handshakeAndRestart() async throws {
        let original = patternBytes(4096 * 512, seed: 11)  // 2 MiB
        let file = try temporaryFile(original)
        defer { file.remove() }
        let journals = "/tmp/blkback-journal-\(getpid())"
        let layout = FakeDeviceLayout(frontendDomain: DomainID(5), deviceID: 51712)
        layout.create(
            in: store,
            backendNodes: ["type": "file", "params": file.path, "mode": "w", "device-type": "disk"])
        var running = Task { [store, driver = driver(journals)] in
            try await BackendBus(store: store, driver: driver).run()
        }
        func node(_ name: String) -> String? { store.value("\(layout.backendPath)/\(name)") }
        #expect(await eventually { node("state") == "2" })
        #expect(node("feature-flush-cache") == "1")
        #expect(node("feature-barrier") == "1")
        #expect(node("feature-discard") == "1")
        #expect(node("feature-max-indirect-segments") == "256")
        #expect(node("max-ring-page-order") == "4")
        #expect(node("feature-persistent") == "1")

        // blkfront: a 4-page ring, event channel, protocol, persistent
        // grants (data pages stay mapped: the restart below maps them anew),
        // Initialised.
        let guest = try FakeFrontend(layout: layout, store: store, grants: grants, events: events)
        let ringPages = try guest.publishRing(pageOrder: 2)
        guest.setNode("feature-persistent", "1")
        var front = try FrontRing<BlkifRequest64, BlkifResponse64>(initializing: ringPages.bytes)
        #expect(front.geometry.entryCount == 128)
        guest.setState(.initialised)
        #expect(await eventually { node("state") == "4" })
        #expect(node("sectors") == "4096")
        #expect(node("info") == "0")
        #expect(node("sector-size") == "512")

        let data = grants.grant(from: layout.frontendDomain, pages: 2, writable: true)
        data.bytes.copyBytes(from: patternBytes(8192, seed: 12))
        let written = Array(data.bytes)
        let port = try #require(guest.port)
        func roundTrip(_ request: BlkifRequest, notify: Bool = true) async throws -> BlkifResponse?
        {
            try front.enqueueRequest(BlkifRequest64(request))
            if front.pushRequests(), notify { try guest.channel.notify(port) }
            var response: BlkifResponse?
            _ = await eventually {
                response = (try? front.nextResponse())??.response
                return response != nil
            }
            return response
        }
        let write = try await roundTrip(
            rwRequest(BlkifOperation.write, id: 1, sector: 64, refs: data.refs))
        #expect(write == BlkifResponse(id: 1, operation: BlkifOperation.write, status: 0))
        #expect(Array(fileBytes(file.path)[(64 * 512)..<(80 * 512)]) == written)

        // The blkback process stops (cancel: the device stays Connected,
        // the journal stays); the guest queues a write meanwhile; a new
        // process adopts the ring and answers it.
        running.cancel()
        try await running.value
        #expect(node("state") == "4")
        let second = grants.grant(from: layout.frontendDomain, pages: 1, writable: true)
        second.bytes.copyBytes(from: patternBytes(4096, seed: 13))
        try front.enqueueRequest(
            BlkifRequest64(rwRequest(BlkifOperation.write, id: 2, sector: 8, refs: second.refs)))
        _ = front.pushRequests()  // its notification goes to a closed port
        running = Task { [store, driver = driver(journals)] in
            try await BackendBus(store: store, driver: driver).run()
        }
        var response: BlkifResponse?
        #expect(
            await eventually {
                response = (try? front.nextResponse())??.response
                return response != nil
            })
        #expect(response == BlkifResponse(id: 2, operation: BlkifOperation.write, status: 0))
        #expect(Array(fileBytes(file.path)[(8 * 512)..<(16 * 512)]) == Array(second.bytes))

        // The guest closes: disconnected, journal removed.
        guest.setState(.closed)
        #expect(await eventually { node("state") == "6" })
        running.cancel()
        try await running.value
        #expect(access("\(journals)/vbd-5-51712", F_OK) != 0, "journal removed on disconnect")
        rmdir(journals)
    }

    @Test(
        "a read-only disk publishes info 4 and no write features; a missing file fails the device")
    func readOnlyAndMissing() async throws {
        let file = try temporaryFile(patternBytes(64 * 512, seed: 14))
        defer { file.remove() }
        let journals = "/tmp/blkback-journal-ro-\(getpid())"
        let readOnly = FakeDeviceLayout(frontendDomain: DomainID(6), deviceID: 768)
        readOnly.create(
            in: store, backendNodes: ["type": "phy", "params": file.path, "mode": "r"])
        let missing = FakeDeviceLayout(frontendDomain: DomainID(6), deviceID: 832)
        missing.create(
            in: store,
            backendNodes: ["type": "file", "params": "/nonexistent/disk.img", "mode": "w"])
        let plain = FakeDeviceLayout(frontendDomain: DomainID(6), deviceID: 5632)
        plain.create(in: store, backendNodes: ["type": "file", "params": file.path, "mode": "r"])
        let running = Task { [store, driver = driver(journals)] in
            try await BackendBus(store: store, driver: driver).run()
        }
        // phy: on a regular file is refused (it is no block device).
        #expect(await eventually { store.value("\(readOnly.backendPath)/state") == "5" })
        #expect(store.value(readOnly.errorNode)?.contains("not a block device") == true)
        #expect(await eventually { store.value("\(missing.backendPath)/state") == "5" })
        #expect(store.value(missing.errorNode)?.contains("/nonexistent/disk.img") == true)
        #expect(await eventually { store.value("\(plain.backendPath)/state") == "2" })
        #expect(store.value("\(plain.backendPath)/feature-flush-cache") == nil)
        let guest = try FakeFrontend(layout: plain, store: store, grants: grants, events: events)
        let ring = try guest.publishRing(protocolName: "x86_32-abi")
        _ = try FrontRing<BlkifRequest32, BlkifResponse32>(initializing: ring.bytes)
        guest.setState(.initialised)
        #expect(await eventually { store.value("\(plain.backendPath)/state") == "4" })
        #expect(store.value("\(plain.backendPath)/info") == "4")
        #expect(store.value("\(plain.backendPath)/sectors") == "64")
        running.cancel()
        try await running.value
        rmdir(journals)
    }
}
