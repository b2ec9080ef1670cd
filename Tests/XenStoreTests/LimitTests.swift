import Testing

@testable import XenStore

/// Paths and sizes xenstored would refuse fail locally, before any byte is
/// sent.
@Suite struct LimitTests {
    @Test(arguments: [
        "/", "/local/domain/0/name", "device/vbd/51712/state", "a", "/A-Z_a-z@0-9",
        "/" + String(repeating: "a", count: 3071),
        String(repeating: "a", count: 2048),
    ])
    func validPaths(_ path: String) throws {
        try XenStorePath.validate(path)
    }

    @Test(arguments: [
        ("", "empty"),
        ("/a//b", "doubled"),
        ("//", "'/'"),
        ("/a/", "trailing"),
        ("a/", "trailing"),
        ("/a b", "' ' is not allowed"),
        ("/a.b", "'.' is not allowed"),
        ("/a\u{0}b", "byte 0"),
        ("/caf\u{e9}", "byte 195"),
        ("@releaseDomain", "special watches only"),
        ("/" + String(repeating: "a", count: 3072), "3073 bytes, over the 3072-byte limit"),
        (String(repeating: "a", count: 2049), "2049 bytes, over the 2048-byte limit"),
    ])
    func invalidPaths(_ path: String, _ reason: String) {
        do {
            try XenStorePath.validate(path)
            Issue.record("accepted \(path)")
        } catch {
            guard case .invalidPath(let rejected, let why) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(rejected == path)
            #expect(why.contains(reason), "\(why)")
        }
    }

    @Test func specialPathsOnlyWhereAllowed() throws {
        try XenStorePath.validate("@introduceDomain", allowSpecial: true)
        #expect(throws: XenStoreError.self) {
            try XenStorePath.validate("@a b", allowSpecial: true)
        }
        #expect(throws: XenStoreError.self) {
            try XenStoreRequest.read("@releaseDomain").encodePayload()
        }
        _ = try XenStoreRequest.watch("@releaseDomain", token: "t").encodePayload()
        _ = try XenStoreRequest.getPermissions("@releaseDomain").encodePayload()
    }

    @Test func payloadLimit() throws {
        // path "/v" (2) + NUL + value: 4093 bytes of value fill 4096 exactly.
        let fits = [UInt8](repeating: 0x61, count: 4093)
        #expect(try XenStoreRequest.write("/v", value: fits).encodePayload().count == 4096)
        #expect(
            throws: XenStoreError.tooLarge(what: "WRITE /v request", size: 4097, limit: 4096)
        ) {
            try XenStoreRequest.write("/v", value: fits + [0x61]).encodePayload()
        }
        let manyPerms = (0..<1000).map { XenStorePermission(domid: UInt32($0), access: .read) }
        #expect(throws: XenStoreError.self) {
            try XenStoreRequest.setPermissions("/p", manyPerms).encodePayload()
        }
        #expect(throws: XenStoreError.self) {
            try XenStoreMessage(type: .read, payload: [UInt8](repeating: 0, count: 4097)).encoded()
        }
    }

    @Test func otherLocalChecks() {
        #expect(throws: XenStoreError.self) {
            try XenStoreRequest.setPermissions("/p", []).encodePayload()
        }
        #expect(throws: XenStoreError.self) {
            try XenStoreRequest.watch("/p", token: "a\u{0}b").encodePayload()
        }
        #expect(throws: XenStoreError.self) { try XenStoreRequest.control([]).encodePayload() }
    }

    @Test func clientSendsNothingForBadRequests() async throws {
        let transport = FakeTransport { request in
            let answer = request.type == .transactionStart ? "1\0" : "OK\0"
            return [reply(request.type, to: request, Array(answer.utf8))]
        }
        let client = XenStoreClient(transport: transport)
        await #expect(throws: XenStoreError.self) { try await client.read("/a//b") }
        await #expect(throws: XenStoreError.self) { try await client.write("bad path", "x") }
        await #expect(throws: XenStoreError.self) {
            try await client.write("/v", bytes: [UInt8](repeating: 0, count: 4094))
        }
        await #expect(throws: XenStoreError.self) { try await client.mkdir("/a/") }
        await #expect(throws: XenStoreError.self) { try await client.remove("") }
        await #expect(throws: XenStoreError.self) { try await client.directory("/x y") }
        await #expect(throws: XenStoreError.self) { try await client.setPermissions("/a", []) }
        await #expect(throws: XenStoreError.self) { try await client.watch("/a//") }
        await #expect(throws: XenStoreError.self) {
            try await client.transaction { tx in try await tx.write("/a/../b", "x") }
        }
        // Only the transaction start and its abandonment reached the wire.
        #expect(transport.sent.map(\.type) == [.transactionStart, .transactionEnd])
        #expect(transport.sent.last?.payload == Array("F\0".utf8))
    }

    @Test func errorDescriptionsNameTheProblem() {
        let cases: [(XenStoreError, String)] = [
            (.noEntry("/a"), "/a: no such node"),
            (.permissionDenied("/a"), "/a: permission denied"),
            (.invalidPath("/a/", reason: "trailing '/'"), "invalid path \"/a/\": trailing '/'"),
            (.tooLarge(what: "WRITE /v request", size: 5000, limit: 4096), "5000 bytes"),
            (.transactionRetriesExhausted(attempts: 3), "3 attempts"),
            (.errno("EINVAL", request: "WRITE /a"), "WRITE /a: xenstored answered EINVAL"),
            (.system(operation: "connect to /s", .noSuchFileOrDirectory), "connect to /s"),
            (.closed, "connection closed"),
        ]
        for (error, text) in cases {
            #expect(error.description.contains(text), "\(error.description)")
        }
    }
}
