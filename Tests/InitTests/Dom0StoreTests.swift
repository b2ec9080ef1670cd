import InMemoryXenStore
import Testing

@testable import Init

@Suite struct Dom0StoreTests {
    @Test func writesWhatXenInitDom0Writes() async throws {
        let server = InMemoryXenStore()
        let client = try server.connect(domid: 0)
        defer { client.close() }
        try await Dom0Store.write(to: client, memoryKiB: 1_048_576, onlineCPUs: [0, 1])
        #expect(server.value(at: "/local/domain/0/name") == "Domain-0")
        #expect(server.value(at: "/local/domain/0/domid") == "0")
        #expect(server.value(at: "/local/domain/0/memory/target") == "1048576")
        #expect(server.value(at: "/local/domain/0/cpu/1/availability") == "online")
        #expect(server.value(at: "/vm/\(Dom0Store.uuid)/name") == "Domain-0")
        #expect(server.value(at: "/local/pool/0/name") == "Pool-0")
        // Running it again (xenstored restarted under PID 1) changes nothing.
        try await Dom0Store.write(to: client, memoryKiB: 1_048_576, onlineCPUs: [0, 1])
        #expect(server.value(at: "/local/domain/0/name") == "Domain-0")
    }

    @Test func onlineCPULists() {
        #expect(Dom0Store.onlineCPUs("0-1\n") == [0, 1])
        #expect(Dom0Store.onlineCPUs("0,2-3") == [0, 2, 3])
        #expect(Dom0Store.onlineCPUs("") == [])
        #expect(Dom0Store.onlineCPUs("3-1,x,5") == [5])
    }
}
