import InMemoryXenStore
import Testing
import XenBus
import XenDevices

@Suite struct XenStoreBusStoreTests {
    @Test func behavesAsTheBackendMachineryExpects() async throws {
        let server = InMemoryXenStore()
        let client = try server.connect(domid: 0)
        defer { client.close() }
        let store = XenStoreBusStore(client: client)

        #expect(try await store.read("/local/domain/0/backend/vbd/1/768/state") == nil)
        #expect(try await store.directory("/local/domain/0/backend/vbd") == [])
        try await store.write("/local/domain/0/backend/vbd/1/768/state", "1")
        #expect(try await store.read("/local/domain/0/backend/vbd/1/768/state") == "1")
        #expect(try await store.directory("/local/domain/0/backend/vbd/1") == ["768"])

        var events = try await store.watch("/local/domain/0/backend/vbd").makeAsyncIterator()
        #expect(try await events.next() == "/local/domain/0/backend/vbd")  // on registration
        try await store.write("/local/domain/0/backend/vbd/1/768/state", "2")
        #expect(try await events.next() == "/local/domain/0/backend/vbd/1/768/state")

        try await store.remove("/local/domain/0/backend/vbd/1")
        try await store.remove("/local/domain/0/backend/vbd/1")  // missing: not an error
        #expect(try await store.directory("/local/domain/0/backend/vbd") == [])
    }
}
