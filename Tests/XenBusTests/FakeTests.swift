import Glibc
import Testing
import XenBus
import XenBusTesting

@Suite("fake grant table")
struct FakeGrantTableTests {
    let guest = DomainID(5)

    @Test("a mapping shares the guest's pages and is unmapped exactly once")
    func mapShares() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 2, writable: true)
        grant.bytes[4096 + 10] = 0x42
        do {
            let mapping = try table.map(domain: guest, refs: grant.refs, writable: true)
            #expect(mapping.bytes.count == 2 * 4096)
            #expect(mapping.bytes[4096 + 10] == 0x42)
            try mapping.writableBytes()[3] = 0x17
            #expect(grant.bytes[3] == 0x17)
            #expect(table.liveMappings == 1)
        }
        #expect(table.liveMappings == 0)
        #expect(
            table.operations == [
                .map(domain: guest, refs: grant.refs, writable: true),
                .unmap(domain: guest, refs: grant.refs),
            ])
    }

    @Test(
        "refs never granted, another domain's refs and writable maps of read-only grants are refused"
    )
    func refusals() throws {
        let table = FakeGrantTable()
        let readOnly = table.grant(from: guest, pages: 1, writable: false)
        let other = table.grant(from: DomainID(6), pages: 1, writable: true)
        let ref = readOnly.refs[0]

        #expect(
            throws: XenBusError.grantRefused(
                domain: guest, ref: GrantRef(9999), status: .badGrantRef)
        ) {
            _ = try table.map(domain: guest, ref: GrantRef(9999), writable: false)
        }
        #expect(
            throws: XenBusError.grantRefused(
                domain: guest, ref: other.refs[0], status: .badGrantRef)
        ) {
            _ = try table.map(domain: guest, ref: other.refs[0], writable: false)
        }
        #expect(
            throws: XenBusError.grantRefused(domain: guest, ref: ref, status: .permissionDenied)
        ) {
            _ = try table.map(domain: guest, ref: ref, writable: true)
        }
        let mapping = try table.map(domain: guest, ref: ref, writable: false)
        #expect(throws: XenBusError.mappingReadOnly) { _ = try mapping.writableBytes() }
        #expect(
            table.operations.filter { if case .mapRefused = $0 { true } else { false } }.count == 3)
        #expect(throws: XenBusError.self) {
            _ = try table.map(domain: guest, refs: [], writable: false)
        }
    }

    @Test("multi-page maps need consecutive pages of one grant, in order")
    func consecutive() throws {
        let table = FakeGrantTable()
        let first = table.grant(from: guest, pages: 2, writable: true)
        let second = table.grant(from: guest, pages: 1, writable: true)
        #expect(throws: XenBusError.self) {
            _ = try table.map(domain: guest, refs: [first.refs[1], first.refs[0]], writable: true)
        }
        #expect(throws: XenBusError.self) {
            _ = try table.map(domain: guest, refs: [first.refs[1], second.refs[0]], writable: true)
        }
        _ = try table.map(domain: guest, refs: [first.refs[1]], writable: true)
    }

    @Test("revoked grants cannot be mapped again")
    func revoke() throws {
        let table = FakeGrantTable()
        let grant = table.grant(from: guest, pages: 1, writable: true)
        table.revoke(grant.refs[0])
        #expect(throws: XenBusError.self) {
            _ = try table.map(domain: guest, refs: grant.refs, writable: true)
        }
    }

    @Test("grant copy in both directions with a status per segment")
    func copy() throws {
        let table = FakeGrantTable()
        let writable = table.grant(from: guest, pages: 1, writable: true)
        let readOnly = table.grant(from: guest, pages: 1, writable: false)
        for index in 0..<4096 { readOnly.bytes[index] = UInt8(truncatingIfNeeded: index) }
        let local = PageBuffer(pages: 1)
        for index in 0..<16 { local.bytes[2048 + index] = 0xC0 + UInt8(index) }

        let segments = [
            // guest → local: 8 bytes from offset 100 of the read-only page
            GrantCopySegment(
                .fromGuest, domain: guest, ref: readOnly.refs[0], offset: 100, length: 8,
                localOffset: 0),
            // local → guest: 16 bytes to offset 4080 (last bytes of the page)
            GrantCopySegment(
                .toGuest, domain: guest, ref: writable.refs[0], offset: 4080, length: 16,
                localOffset: 2048),
            // crosses the guest page
            GrantCopySegment(
                .fromGuest, domain: guest, ref: readOnly.refs[0], offset: 4090, length: 8,
                localOffset: 0),
            // outside the local buffer
            GrantCopySegment(
                .fromGuest, domain: guest, ref: readOnly.refs[0], offset: 0, length: 8,
                localOffset: 4092),
            GrantCopySegment(
                .fromGuest, domain: guest, ref: readOnly.refs[0], offset: 0, length: 8,
                localOffset: -1),
            // writing into a read-only grant
            GrantCopySegment(
                .toGuest, domain: guest, ref: readOnly.refs[0], offset: 0, length: 8, localOffset: 0
            ),
            // a ref never granted, and a ref of another domain
            GrantCopySegment(
                .fromGuest, domain: guest, ref: GrantRef(77_777), offset: 0, length: 8,
                localOffset: 0),
            GrantCopySegment(
                .fromGuest, domain: DomainID(9), ref: readOnly.refs[0], offset: 0, length: 8,
                localOffset: 0),
        ]
        let statuses = try table.copy(segments, local: local.bytes)
        #expect(
            statuses == [
                .okay, .okay, .badCopyArgument, .badCopyArgument, .badCopyArgument,
                .permissionDenied, .badGrantRef, .badGrantRef,
            ])
        #expect(Array(local.bytes[0..<8]) == (100..<108).map { UInt8($0) })
        #expect(Array(writable.bytes[4080..<4096]) == (0..<16).map { 0xC0 + UInt8($0) })
        #expect(readOnly.bytes[0] == 0, "the read-only page was not written")
        #expect(table.operations == [.copy(segments)])
    }
}

@Suite("fake event channels")
struct FakeEventChannelTests {
    let backend = DomainID(0)
    let guest = DomainID(4)

    func readable(_ channel: any EventChannel) -> Bool {
        var descriptor = pollfd(fd: channel.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1
    }

    @Test("interdomain notify, masking until unmask, pending port numbers")
    func notifyAndMask() throws {
        let hub = FakeEventChannelHub()
        let guestChannel = try hub.open(domain: guest)
        let backendChannel = try hub.open(domain: backend)
        let guestPort = try guestChannel.allocateUnbound(remoteDomain: backend)
        let backendPort = try backendChannel.bindInterdomain(
            remoteDomain: guest, remotePort: guestPort)

        #expect(!readable(backendChannel))
        try guestChannel.notify(guestPort)
        #expect(readable(backendChannel))
        #expect(try backendChannel.pending() == backendPort)
        // Delivered ports are masked: more notifications only set pending.
        try guestChannel.notify(guestPort)
        try guestChannel.notify(guestPort)
        #expect(!readable(backendChannel))
        try backendChannel.unmask(backendPort)
        #expect(readable(backendChannel))
        #expect(try backendChannel.pending() == backendPort)
        #expect(!readable(backendChannel))
        #expect(hub.sentCount(domain: guest, port: guestPort) == 3)
        #expect(hub.deliveredCount(domain: backend, port: backendPort) == 2)

        // And the other way.
        try backendChannel.notify(backendPort)
        #expect(try guestChannel.pending() == guestPort)
    }

    @Test("pending blocks until a notification arrives")
    func pendingBlocks() async throws {
        let hub = FakeEventChannelHub()
        let guestChannel = try hub.open(domain: guest)
        let backendChannel = try hub.open(domain: backend)
        let guestPort = try guestChannel.allocateUnbound(remoteDomain: backend)
        let backendPort = try backendChannel.bindInterdomain(
            remoteDomain: guest, remotePort: guestPort)
        let waiter = Task.detached { try backendChannel.pending() }
        try await Task.sleep(for: .milliseconds(50))
        try guestChannel.notify(guestPort)
        #expect(try await waiter.value == backendPort)
    }

    @Test("binding needs a port offered to us; unknown ports are errors")
    func bindingRules() throws {
        let hub = FakeEventChannelHub()
        let guestChannel = try hub.open(domain: guest)
        let backendChannel = try hub.open(domain: backend)
        let offeredToSomeoneElse = try guestChannel.allocateUnbound(remoteDomain: DomainID(7))
        #expect(throws: XenBusError.self) {
            _ = try backendChannel.bindInterdomain(
                remoteDomain: guest, remotePort: offeredToSomeoneElse)
        }
        #expect(throws: XenBusError.self) {
            _ = try backendChannel.bindInterdomain(
                remoteDomain: guest, remotePort: EventChannelPort(999_999))
        }
        #expect(throws: XenBusError.self) { try backendChannel.notify(EventChannelPort(42)) }
        #expect(throws: XenBusError.self) { try backendChannel.unmask(EventChannelPort(42)) }
        #expect(throws: XenBusError.self) { try backendChannel.unbind(EventChannelPort(42)) }
        // A port bound once cannot be bound again.
        let offered = try guestChannel.allocateUnbound(remoteDomain: backend)
        _ = try backendChannel.bindInterdomain(remoteDomain: guest, remotePort: offered)
        #expect(throws: XenBusError.self) {
            _ = try backendChannel.bindInterdomain(remoteDomain: guest, remotePort: offered)
        }
    }

    @Test("a binding unbinds on release; the guest's port becomes unbound again")
    func bindingLifetime() throws {
        let hub = FakeEventChannelHub()
        let guestChannel = try hub.open(domain: guest)
        let backendChannel = try hub.open(domain: backend)
        let guestPort = try guestChannel.allocateUnbound(remoteDomain: backend)
        var localPort: EventChannelPort? = nil
        do {
            let binding = try EventChannelBinding(
                channel: backendChannel, remoteDomain: guest, remotePort: guestPort)
            localPort = binding.port
            try binding.notify()
            #expect(try guestChannel.pending() == guestPort)
        }
        let port = try #require(localPort)
        #expect(!hub.isBound(domain: backend, port: port))
        // The guest's notifications now go nowhere, without error.
        try guestChannel.unmask(guestPort)
        try guestChannel.notify(guestPort)
        #expect(!readable(backendChannel))
        // And the port can be bound again (a reconnect).
        _ = try backendChannel.bindInterdomain(remoteDomain: guest, remotePort: guestPort)
    }
}

@Suite("in-memory store")
struct InMemoryStoreTests {
    @Test("parents are created; directory lists children; remove takes the subtree")
    func tree() async throws {
        let store = InMemoryXenBusStore()
        try await store.write("/a/b/c", "1")
        try await store.write("/a/b/d", "2")
        #expect(try await store.read("/a/b") == "")
        #expect(try await store.directory("/a/b") == ["c", "d"])
        #expect(try await store.directory("/nowhere") == [])
        try await store.remove("/a/b")
        #expect(try await store.read("/a/b/c") == nil)
        #expect(try await store.read("/a") == "")
        try await store.remove("/nowhere")
    }

    @Test("watches fire on registration, below the path, and for removed ancestors")
    func watches() async throws {
        let store = InMemoryXenBusStore(["/x/y/state": "1"])
        let stream = try await store.watch("/x/y/state")
        var iterator = stream.makeAsyncIterator()
        #expect(try await iterator.next() == "/x/y/state")
        store.set("/x/y/state", "2")
        #expect(try await iterator.next() == "/x/y/state")
        store.set("/x/y/other", "2")  // not at or below the watch: silent
        store.delete("/x")
        #expect(try await iterator.next() == "/x/y/state")

        let parent = try await store.watch("/p")
        var parentEvents = parent.makeAsyncIterator()
        #expect(try await parentEvents.next() == "/p")
        store.set("/p/q/r", "v")
        #expect(try await parentEvents.next() == "/p/q/r")
        store.delete("/p/q")
        #expect(try await parentEvents.next() == "/p/q")
    }

    @Test("ending the iteration removes the watch")
    func watchRemoval() async throws {
        let store = InMemoryXenBusStore()
        let task = Task {
            for try await _ in try await store.watch("/w") {}
        }
        while store.watchCount == 0 { await Task.yield() }
        task.cancel()
        _ = await task.result
        #expect(store.watchCount == 0)
    }
}
