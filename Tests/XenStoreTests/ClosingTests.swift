import Testing

@testable import InMemoryXenStore
@testable import XenStore

/// A connection that ends fails what is outstanding and ends watches; no
/// request hangs and nothing traps.
@Suite(.timeLimit(.minutes(1))) struct ClosingTests {
    /// Waits (briefly) until `count` requests have been sent.
    func waitForSent(_ transport: FakeTransport, count: Int) async throws {
        for _ in 0..<2000 where transport.sent.count < count {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(transport.sent.count >= count)
    }

    @Test func hangUpFailsOutstandingRequests() async throws {
        let transport = FakeTransport()  // never answers
        let client = XenStoreClient(transport: transport)
        let first = Task { try await client.read("/a") }
        let second = Task { try await client.write("/b", "x") }
        try await waitForSent(transport, count: 2)
        transport.hangUp()
        await #expect(throws: XenStoreError.closed) { try await first.value }
        await #expect(throws: XenStoreError.closed) { try await second.value }
        // Later requests fail at once.
        await #expect(throws: XenStoreError.closed) { try await client.read("/a") }
    }

    @Test func hangUpEndsWatchesWithAnError() async throws {
        let transport = FakeTransport { request in
            [reply(request.type, to: request, Array("OK\0".utf8))]
        }
        let client = XenStoreClient(transport: transport)
        let watch = try await client.watch("/w")
        let waiting = Task { try await watch.next() }
        try await Task.sleep(for: .milliseconds(20))
        transport.hangUp()
        await #expect(throws: XenStoreError.closed) { try await waiting.value }
        // After the error the sequence is over.
        #expect(try await watch.next() == nil)
    }

    @Test func closeFailsOutstandingRequestsAndClosesTheTransport() async throws {
        let transport = FakeTransport()
        let client = XenStoreClient(transport: transport)
        let pending = Task { try await client.directory("/") }
        try await waitForSent(transport, count: 1)
        client.close()
        await #expect(throws: XenStoreError.closed) { try await pending.value }
        #expect(transport.isClosed)
        client.close()  // idempotent
    }

    @Test func partialReplyThenHangUp() async throws {
        // Half a header arrives, then the daemon goes away.
        let transport = FakeTransport { request in
            [
                Array(
                    (try? XenStoreMessage(type: .read, requestID: request.requestID, payload: [])
                        .encoded())?.prefix(7) ?? [])
            ]
        }
        let client = XenStoreClient(transport: transport)
        let pending = Task { try await client.read("/a") }
        try await waitForSent(transport, count: 1)
        transport.hangUp()
        await #expect(throws: XenStoreError.closed) { try await pending.value }
    }

    @Test func oversizedReplyIsAProtocolError() async throws {
        let transport = FakeTransport { request in
            [
                [
                    0x02, 0x00, 0x00, 0x00,  // type: XS_READ
                    0x01, 0x00, 0x00, 0x00,  // req_id: 1
                    0x00, 0x00, 0x00, 0x00,  // tx_id: none
                    0xff, 0xff, 0x00, 0x00,  // len: 65535, over the limit
                ]
            ]
        }
        let client = XenStoreClient(transport: transport)
        do {
            _ = try await client.read("/a")
            Issue.record("read succeeded")
        } catch XenStoreError.protocol(let what) {
            #expect(what.contains("65535"))
        }
        #expect(transport.isClosed)
        await #expect(throws: XenStoreError.self) { try await client.read("/a") }
    }

    @Test func serverSideDisconnect() async throws {
        let store = InMemoryXenStore()
        defer { store.stop() }
        let guest = try store.connect(domid: 3)
        let dom0 = try store.connect()
        try await dom0.write("/local/domain/3/x", "1")
        try await dom0.setPermissions("/local/domain/3", [.init(domid: 3, access: .none)])
        let watch = try await guest.watch("x")
        #expect(try await watch.next() == XenStoreWatchEvent(path: "x"))
        store.disconnect(domid: 3)
        await #expect(throws: XenStoreError.closed) { try await watch.next() }
        await #expect(throws: XenStoreError.closed) { try await guest.read("x") }
        // Dom0's connection is unaffected.
        #expect(try await dom0.read("/local/domain/3/x") == "1")
    }

    @Test func stoppedStoreFailsEveryone() async throws {
        let store = InMemoryXenStore()
        let client = try store.connect()
        try await client.write("/a", "1")
        store.stop()
        await #expect(throws: XenStoreError.closed) { try await client.read("/a") }
        #expect(throws: XenStoreError.closed) { try store.connect() }
    }

    @Test func droppedClientReleasesItsServerConnection() async throws {
        let store = InMemoryXenStore()
        defer { store.stop() }
        do {
            let client = try store.connect()
            try await client.write("/a", "1")
            #expect(store.connectionCount == 1)
        }
        for _ in 0..<1000 where store.connectionCount > 0 {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(store.connectionCount == 0)
    }
}
