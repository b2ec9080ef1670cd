import Synchronization
import Testing

@testable import XenStore

/// The client's requests and its reading of replies, against literal bytes
/// from a scripted daemon (replies fed whole and one byte at a time).
@Suite struct ClientWireTests {
    /// A client whose daemon checks the first request against `expected`
    /// and answers with `answer`.
    func client(
        chunkSize: Int, expecting expected: [UInt8], answer: [UInt8]
    ) -> (XenStoreClient, FakeTransport) {
        let transport = FakeTransport(chunkSize: chunkSize) { request in
            let bytes = (try? request.encoded()) ?? []
            #expect(bytes == expected)
            return [answer]
        }
        return (XenStoreClient(transport: transport), transport)
    }

    @Test(arguments: [Int.max, 1])
    func read(chunkSize: Int) async throws {
        let (client, _) = self.client(
            chunkSize: chunkSize,
            expecting: [
                0x02, 0x00, 0x00, 0x00,  // type: XS_READ
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x0b, 0x00, 0x00, 0x00,  // len: 11
            ] + Array("/vm/1/name\0".utf8),  // path
            answer: [
                0x02, 0x00, 0x00, 0x00,  // type: XS_READ
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x05, 0x00, 0x00, 0x00,  // len: 5
            ] + Array("guest".utf8))  // value, no NUL
        #expect(try await client.read("/vm/1/name") == "guest")
    }

    @Test(arguments: [Int.max, 1])
    func readMissingNode(chunkSize: Int) async throws {
        let (client, _) = client(
            chunkSize: chunkSize,
            expecting: [
                0x02, 0x00, 0x00, 0x00,  // type: XS_READ
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x03, 0x00, 0x00, 0x00,  // len: 3
            ] + Array("/x\0".utf8),  // path
            answer: [
                0x10, 0x00, 0x00, 0x00,  // type: XS_ERROR
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x07, 0x00, 0x00, 0x00,  // len: 7
            ] + Array("ENOENT\0".utf8))  // errno name
        await #expect(throws: XenStoreError.noEntry("/x")) { try await client.read("/x") }
    }

    @Test func readIfPresentMapsNoEntryToNil() async throws {
        let transport = FakeTransport { request in
            [reply(.error, to: request, Array("ENOENT\0".utf8))]
        }
        let client = XenStoreClient(transport: transport)
        #expect(try await client.readIfPresent("/x") == nil)
        #expect(try await client.exists("/x") == false)
    }

    @Test(arguments: [Int.max, 1])
    func writeAndAck(chunkSize: Int) async throws {
        let (client, _) = client(
            chunkSize: chunkSize,
            expecting: [
                0x0b, 0x00, 0x00, 0x00,  // type: XS_WRITE
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x07, 0x00, 0x00, 0x00,  // len: 7
            ] + Array("/a/b\0hi".utf8),  // path, value
            answer: [
                0x0b, 0x00, 0x00, 0x00,  // type: XS_WRITE
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x03, 0x00, 0x00, 0x00,  // len: 3
            ] + Array("OK\0".utf8))  // acknowledgement
        try await client.write("/a/b", "hi")
    }

    @Test(arguments: [Int.max, 1])
    func directory(chunkSize: Int) async throws {
        let (client, _) = client(
            chunkSize: chunkSize,
            expecting: [
                0x01, 0x00, 0x00, 0x00,  // type: XS_DIRECTORY
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x0e, 0x00, 0x00, 0x00,  // len: 14
            ] + Array("/local/domain\0".utf8),  // path
            answer: [
                0x01, 0x00, 0x00, 0x00,  // type: XS_DIRECTORY
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x05, 0x00, 0x00, 0x00,  // len: 5
            ] + Array("0\u{0}12\u{0}".utf8))  // child names, each NUL-terminated
        #expect(try await client.directory("/local/domain") == ["0", "12"])
    }

    @Test(arguments: [Int.max, 1])
    func permissions(chunkSize: Int) async throws {
        let (client, _) = client(
            chunkSize: chunkSize,
            expecting: [
                0x03, 0x00, 0x00, 0x00,  // type: XS_GET_PERMS
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x03, 0x00, 0x00, 0x00,  // len: 3
            ] + Array("/a\0".utf8),  // path
            answer: [
                0x03, 0x00, 0x00, 0x00,  // type: XS_GET_PERMS
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x06, 0x00, 0x00, 0x00,  // len: 6
            ] + Array("b5\0r0\0".utf8))  // owner entry, entry for dom0
        #expect(
            try await client.permissions("/a") == [
                .init(domid: 5, access: .both), .init(domid: 0, access: .read),
            ])
    }

    @Test(arguments: [Int.max, 1])
    func domainQueries(chunkSize: Int) async throws {
        let transport = FakeTransport(chunkSize: chunkSize) { request in
            switch request.type {
            case .getDomainPath:
                #expect(request.payload == Array("7\0".utf8))
                return [reply(.getDomainPath, to: request, Array("/local/domain/7\0".utf8))]
            case .isDomainIntroduced:
                #expect(request.payload == Array("7\0".utf8))
                return [reply(.isDomainIntroduced, to: request, Array("T\0".utf8))]
            case .introduce:
                #expect(request.payload == Array("7\u{0}99\u{0}4\u{0}".utf8))
                return [reply(.introduce, to: request, Array("OK\0".utf8))]
            case .release:
                #expect(request.payload == Array("7\0".utf8))
                return [reply(.release, to: request, Array("OK\0".utf8))]
            default:
                return [reply(.error, to: request, Array("ENOSYS\0".utf8))]
            }
        }
        let client = XenStoreClient(transport: transport)
        #expect(try await client.domainPath(7) == "/local/domain/7")
        #expect(try await client.isDomainIntroduced(7))
        try await client.introduceDomain(7, mfn: 99, eventChannel: 4)
        try await client.releaseDomain(7)
        await #expect(throws: XenStoreError.errno("ENOSYS", request: "RESUME domain 7")) {
            try await client.resumeDomain(7)
        }
        #expect(
            transport.sent.map(\.type) == [
                .getDomainPath, .isDomainIntroduced, .introduce, .release, .resume,
            ])
    }

    @Test func transactionCarriesItsIDInTheHeader() async throws {
        let transport = FakeTransport { request in
            switch request.type {
            case .transactionStart:
                #expect(request.transactionID == 0)
                return [reply(.transactionStart, to: request, Array("42\0".utf8))]
            case .write, .transactionEnd:
                #expect(request.transactionID == 42)
                return [reply(request.type, to: request, Array("OK\0".utf8))]
            default:
                return [reply(.error, to: request, Array("EINVAL\0".utf8))]
            }
        }
        let client = XenStoreClient(transport: transport)
        let id = try await client.transaction { tx in
            try await tx.write("/t", "1")
            return tx.id
        }
        #expect(id == 42)
        let sent = transport.sent
        #expect(sent.map(\.type) == [.transactionStart, .write, .transactionEnd])
        #expect(sent.last?.payload == Array("T\0".utf8))
    }

    @Test func watchEventsReachTheirWatchByToken() async throws {
        // The daemon acknowledges, fires once on set-up, then once more;
        // an event for an unknown token in between is ignored.
        let transport = FakeTransport(chunkSize: 1) { request in
            guard request.type == .watch else {
                return [reply(request.type, to: request, Array("OK\0".utf8))]
            }
            let fields = XenStorePayload.strings(request.payload)
            #expect(fields.count == 2)
            let path = fields.first ?? ""
            let token = fields.last ?? ""
            return [
                reply(.watch, to: request, Array("OK\0".utf8)),
                (try? XenStoreWatchEvent.message(path: path, token: token).encoded()) ?? [],
                (try? XenStoreWatchEvent.message(path: "/other", token: "nobody").encoded()) ?? [],
                (try? XenStoreWatchEvent.message(path: path + "/x", token: token).encoded()) ?? [],
            ]
        }
        let client = XenStoreClient(transport: transport)
        let watch = try await client.watch("/w")
        #expect(try await watch.next() == XenStoreWatchEvent(path: "/w"))
        #expect(try await watch.next() == XenStoreWatchEvent(path: "/w/x"))
        await watch.cancel()
        #expect(try await watch.next() == nil)
        let unwatch = transport.sent.last
        #expect(unwatch?.type == .unwatch)
        #expect(XenStorePayload.strings(unwatch?.payload ?? []).first == "/w")
    }

    @Test func repliesAreMatchedByRequestIDNotOrder() async throws {
        // The daemon holds every READ until three are queued, then answers
        // in reverse order.
        let held = HeldReplies()
        let transport = FakeTransport { request in
            held.add(request)
        }
        let client = XenStoreClient(transport: transport)
        async let a = client.read("/a")
        async let b = client.read("/b")
        async let c = client.read("/c")
        let values = try await [a, b, c]
        #expect(values == ["value of /a", "value of /b", "value of /c"])
    }
}

/// Collects READ requests and answers all of them, newest first, once
/// three have arrived.
final class HeldReplies: Sendable {
    private let requests = Mutex<[XenStoreMessage]>([])

    func add(_ request: XenStoreMessage) -> [[UInt8]] {
        let batch = requests.withLock { held -> [XenStoreMessage] in
            held.append(request)
            guard held.count == 3 else { return [] }
            defer { held = [] }
            return held
        }
        return batch.reversed().map { request in
            let path = XenStorePayload.strings(request.payload).first ?? ""
            return reply(.read, to: request, Array("value of \(path)".utf8))
        }
    }
}
