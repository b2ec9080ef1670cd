import Testing

@testable import XenStore

/// Feeds `bytes` to a fresh parser whole and one byte at a time; both must
/// yield exactly `expected`.
func expectParses(_ bytes: [UInt8], as expected: [XenStoreMessage]) throws {
    var whole = XenStoreMessageParser()
    whole.append(bytes)
    var wholeMessages: [XenStoreMessage] = []
    while let message = try whole.next() { wholeMessages.append(message) }
    #expect(wholeMessages == expected)
    #expect(whole.bufferedCount == 0)

    var single = XenStoreMessageParser()
    var singleMessages: [XenStoreMessage] = []
    for byte in bytes {
        single.append([byte])
        while let message = try single.next() { singleMessages.append(message) }
    }
    #expect(singleMessages == expected)
    #expect(single.bufferedCount == 0)
}

/// A request, its ids, and the exact bytes on the wire.
struct RequestCase: CustomTestStringConvertible, Sendable {
    let request: XenStoreRequest
    let requestID: UInt32
    let transactionID: UInt32
    let bytes: [UInt8]
    var testDescription: String { request.description }
}

let requestCases: [RequestCase] = [
    RequestCase(
        request: .control(["print", "hi"]), requestID: 1, transactionID: 0,
        bytes: [
            0x00, 0x00, 0x00, 0x00,  // type: XS_CONTROL (0)
            0x01, 0x00, 0x00, 0x00,  // req_id: 1
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x09, 0x00, 0x00, 0x00,  // len: 9
        ] + Array("print\0hi\0".utf8)),  // command, parameter
    RequestCase(
        request: .directory("/local/domain"), requestID: 2, transactionID: 0,
        bytes: [
            0x01, 0x00, 0x00, 0x00,  // type: XS_DIRECTORY (1)
            0x02, 0x00, 0x00, 0x00,  // req_id: 2
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x0e, 0x00, 0x00, 0x00,  // len: 14
        ] + Array("/local/domain\0".utf8)),  // path
    RequestCase(
        request: .read("/a/b"), requestID: 0x0102_0304, transactionID: 0,
        bytes: [
            0x02, 0x00, 0x00, 0x00,  // type: XS_READ (2)
            0x04, 0x03, 0x02, 0x01,  // req_id: 0x01020304, little-endian
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x05, 0x00, 0x00, 0x00,  // len: 5
        ] + Array("/a/b\0".utf8)),  // path
    RequestCase(
        request: .getPermissions("/a"), requestID: 3, transactionID: 9,
        bytes: [
            0x03, 0x00, 0x00, 0x00,  // type: XS_GET_PERMS (3)
            0x03, 0x00, 0x00, 0x00,  // req_id: 3
            0x09, 0x00, 0x00, 0x00,  // tx_id: 9
            0x03, 0x00, 0x00, 0x00,  // len: 3
        ] + Array("/a\0".utf8)),  // path
    RequestCase(
        request: .getPermissions("@releaseDomain"), requestID: 3, transactionID: 0,
        bytes: [
            0x03, 0x00, 0x00, 0x00,  // type: XS_GET_PERMS (3)
            0x03, 0x00, 0x00, 0x00,  // req_id: 3
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x0f, 0x00, 0x00, 0x00,  // len: 15
        ] + Array("@releaseDomain\0".utf8)),  // special path
    RequestCase(
        request: .watch("/a", token: "t1"), requestID: 4, transactionID: 0,
        bytes: [
            0x04, 0x00, 0x00, 0x00,  // type: XS_WATCH (4)
            0x04, 0x00, 0x00, 0x00,  // req_id: 4
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x06, 0x00, 0x00, 0x00,  // len: 6
        ] + Array("/a\0t1\0".utf8)),  // path, token
    RequestCase(
        request: .unwatch("@introduceDomain", token: "t2"), requestID: 5, transactionID: 0,
        bytes: [
            0x05, 0x00, 0x00, 0x00,  // type: XS_UNWATCH (5)
            0x05, 0x00, 0x00, 0x00,  // req_id: 5
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x14, 0x00, 0x00, 0x00,  // len: 20
        ] + Array("@introduceDomain\0t2\0".utf8)),  // special path, token
    RequestCase(
        request: .transactionStart, requestID: 6, transactionID: 0,
        bytes: [
            0x06, 0x00, 0x00, 0x00,  // type: XS_TRANSACTION_START (6)
            0x06, 0x00, 0x00, 0x00,  // req_id: 6
            0x00, 0x00, 0x00, 0x00,  // tx_id: must be 0
            0x01, 0x00, 0x00, 0x00,  // len: 1
            0x00,  // payload: the empty string
        ]),
    RequestCase(
        request: .transactionEnd(commit: true), requestID: 7, transactionID: 0x12,
        bytes: [
            0x07, 0x00, 0x00, 0x00,  // type: XS_TRANSACTION_END (7)
            0x07, 0x00, 0x00, 0x00,  // req_id: 7
            0x12, 0x00, 0x00, 0x00,  // tx_id: the transaction ending
            0x02, 0x00, 0x00, 0x00,  // len: 2
            0x54, 0x00,  // "T": commit
        ]),
    RequestCase(
        request: .transactionEnd(commit: false), requestID: 7, transactionID: 0x12,
        bytes: [
            0x07, 0x00, 0x00, 0x00,  // type: XS_TRANSACTION_END (7)
            0x07, 0x00, 0x00, 0x00,  // req_id: 7
            0x12, 0x00, 0x00, 0x00,  // tx_id: the transaction ending
            0x02, 0x00, 0x00, 0x00,  // len: 2
            0x46, 0x00,  // "F": abandon
        ]),
    RequestCase(
        request: .introduce(domid: 5, mfn: 1234, eventChannel: 3), requestID: 8,
        transactionID: 0,
        bytes: [
            0x08, 0x00, 0x00, 0x00,  // type: XS_INTRODUCE (8)
            0x08, 0x00, 0x00, 0x00,  // req_id: 8
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x09, 0x00, 0x00, 0x00,  // len: 9
        ] + Array("5\u{0}1234\u{0}3\u{0}".utf8)),  // domid, mfn, event channel
    RequestCase(
        request: .release(domid: 5), requestID: 9, transactionID: 0,
        bytes: [
            0x09, 0x00, 0x00, 0x00,  // type: XS_RELEASE (9)
            0x09, 0x00, 0x00, 0x00,  // req_id: 9
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x02, 0x00, 0x00, 0x00,  // len: 2
        ] + Array("5\0".utf8)),  // domid
    RequestCase(
        request: .getDomainPath(domid: 17), requestID: 10, transactionID: 0,
        bytes: [
            0x0a, 0x00, 0x00, 0x00,  // type: XS_GET_DOMAIN_PATH (10)
            0x0a, 0x00, 0x00, 0x00,  // req_id: 10
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x03, 0x00, 0x00, 0x00,  // len: 3
        ] + Array("17\0".utf8)),  // domid
    RequestCase(
        request: .write("/a", value: Array("xy".utf8)), requestID: 11, transactionID: 0,
        bytes: [
            0x0b, 0x00, 0x00, 0x00,  // type: XS_WRITE (11)
            0x0b, 0x00, 0x00, 0x00,  // req_id: 11
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x05, 0x00, 0x00, 0x00,  // len: 5
        ] + Array("/a\0xy".utf8)),  // path, NUL, value without a NUL
    RequestCase(
        request: .write("/bin", value: [0, 0xff]), requestID: 11, transactionID: 3,
        bytes: [
            0x0b, 0x00, 0x00, 0x00,  // type: XS_WRITE (11)
            0x0b, 0x00, 0x00, 0x00,  // req_id: 11
            0x03, 0x00, 0x00, 0x00,  // tx_id: 3
            0x07, 0x00, 0x00, 0x00,  // len: 7
        ] + Array("/bin\0".utf8) + [0x00, 0xff]),  // path, binary value holding a NUL
    RequestCase(
        request: .mkdir("/a/b"), requestID: 12, transactionID: 0,
        bytes: [
            0x0c, 0x00, 0x00, 0x00,  // type: XS_MKDIR (12)
            0x0c, 0x00, 0x00, 0x00,  // req_id: 12
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x05, 0x00, 0x00, 0x00,  // len: 5
        ] + Array("/a/b\0".utf8)),  // path
    RequestCase(
        request: .remove("/a"), requestID: 13, transactionID: 0,
        bytes: [
            0x0d, 0x00, 0x00, 0x00,  // type: XS_RM (13)
            0x0d, 0x00, 0x00, 0x00,  // req_id: 13
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x03, 0x00, 0x00, 0x00,  // len: 3
        ] + Array("/a\0".utf8)),  // path
    RequestCase(
        request: .setPermissions(
            "/a", [.init(domid: 5, access: .both), .init(domid: 0, access: .read)]),
        requestID: 14, transactionID: 0,
        bytes: [
            0x0e, 0x00, 0x00, 0x00,  // type: XS_SET_PERMS (14)
            0x0e, 0x00, 0x00, 0x00,  // req_id: 14
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x09, 0x00, 0x00, 0x00,  // len: 9
        ] + Array("/a\0b5\0r0\0".utf8)),  // path, owner entry, entry for dom0
    RequestCase(
        request: .isDomainIntroduced(domid: 5), requestID: 17, transactionID: 0,
        bytes: [
            0x11, 0x00, 0x00, 0x00,  // type: XS_IS_DOMAIN_INTRODUCED (17)
            0x11, 0x00, 0x00, 0x00,  // req_id: 17
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x02, 0x00, 0x00, 0x00,  // len: 2
        ] + Array("5\0".utf8)),  // domid
    RequestCase(
        request: .resume(domid: 5), requestID: 18, transactionID: 0,
        bytes: [
            0x12, 0x00, 0x00, 0x00,  // type: XS_RESUME (18)
            0x12, 0x00, 0x00, 0x00,  // req_id: 18
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x02, 0x00, 0x00, 0x00,  // len: 2
        ] + Array("5\0".utf8)),  // domid
    RequestCase(
        request: .setTarget(domid: 6, target: 5), requestID: 19, transactionID: 0,
        bytes: [
            0x13, 0x00, 0x00, 0x00,  // type: XS_SET_TARGET (19)
            0x13, 0x00, 0x00, 0x00,  // req_id: 19
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x04, 0x00, 0x00, 0x00,  // len: 4
        ] + Array("6\u{0}5\u{0}".utf8)),  // domid, target domid
    RequestCase(
        request: .resetWatches, requestID: 21, transactionID: 0,
        bytes: [
            0x15, 0x00, 0x00, 0x00,  // type: XS_RESET_WATCHES (21)
            0x15, 0x00, 0x00, 0x00,  // req_id: 21
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x01, 0x00, 0x00, 0x00,  // len: 1
            0x00,  // payload: the empty string
        ]),
    RequestCase(
        request: .directoryPart("/a", offset: 4090), requestID: 22, transactionID: 0,
        bytes: [
            0x16, 0x00, 0x00, 0x00,  // type: XS_DIRECTORY_PART (22)
            0x16, 0x00, 0x00, 0x00,  // req_id: 22
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x08, 0x00, 0x00, 0x00,  // len: 8
        ] + Array("/a\u{0}4090\u{0}".utf8)),  // path, byte offset into the child list
]

@Suite struct RequestWireTests {
    @Test(arguments: requestCases)
    func encodesToLiteralBytes(_ item: RequestCase) throws {
        let message = try item.request.message(
            requestID: item.requestID, transactionID: item.transactionID)
        #expect(try message.encoded() == item.bytes)
    }

    @Test(arguments: requestCases)
    func parsesAndDecodesLiteralBytes(_ item: RequestCase) throws {
        let message = try item.request.message(
            requestID: item.requestID, transactionID: item.transactionID)
        try expectParses(item.bytes, as: [message])
        #expect(try XenStoreRequest(decoding: message) == item.request)
    }

    @Test func coversEveryRequestType() {
        let covered = Set(requestCases.map(\.request.type))
        let all: Set<XenStoreMessageType> = [
            .control, .directory, .read, .getPermissions, .watch, .unwatch, .transactionStart,
            .transactionEnd, .introduce, .release, .getDomainPath, .write, .mkdir, .remove,
            .setPermissions, .isDomainIntroduced, .resume, .setTarget, .resetWatches,
            .directoryPart,
        ]
        #expect(covered == all)
    }
}

@Suite struct ReplyWireTests {
    @Test func errorReply() throws {
        let bytes: [UInt8] =
            [
                0x10, 0x00, 0x00, 0x00,  // type: XS_ERROR (16)
                0x02, 0x00, 0x00, 0x00,  // req_id: echoes the request
                0x00, 0x00, 0x00, 0x00,  // tx_id: echoes the request
                0x07, 0x00, 0x00, 0x00,  // len: 7
            ] + Array("ENOENT\0".utf8)  // errno name
        let message = XenStoreMessage(
            type: .error, requestID: 2, payload: Array("ENOENT\0".utf8))
        try expectParses(bytes, as: [message])
        #expect(try message.encoded() == bytes)
        #expect(XenStoreClient.error(fromReply: message.payload, to: .read("/x")) == .noEntry("/x"))
    }

    @Test func errorNamesMapToCases() {
        let request = XenStoreRequest.write("/p", value: [])
        func map(_ name: String) -> XenStoreError {
            XenStoreClient.error(fromReply: Array("\(name)\0".utf8), to: request)
        }
        #expect(map("EACCES") == .permissionDenied("/p"))
        #expect(map("EPERM") == .permissionDenied("/p"))
        #expect(map("EAGAIN") == .again)
        #expect(map("ENOSPC") == .errno("ENOSPC", request: "WRITE /p"))
        #expect(map("ENOSPC").description.contains("quota"))
    }

    @Test func watchEvent() throws {
        let bytes: [UInt8] =
            [
                0x0f, 0x00, 0x00, 0x00,  // type: XS_WATCH_EVENT (15)
                0x00, 0x00, 0x00, 0x00,  // req_id: 0, unsolicited
                0x00, 0x00, 0x00, 0x00,  // tx_id: 0
                0x0c, 0x00, 0x00, 0x00,  // len: 12
            ] + Array("/a/b/c\0tok\0".utf8) + [0x00]  // path, token, (an extra NUL tolerated)
        var expected = XenStoreWatchEvent.message(path: "/a/b/c", token: "tok")
        expected.payload.append(0)
        try expectParses(bytes, as: [expected])
        let (path, token) = try XenStoreWatchEvent.decode(expected.payload)
        #expect(path == "/a/b/c")
        #expect(token == "tok")
        #expect(throws: XenStoreError.self) { try XenStoreWatchEvent.decode(Array("/a\0".utf8)) }
    }

    @Test func severalRepliesInOneChunk() throws {
        let bytes: [UInt8] =
            [
                0x02, 0x00, 0x00, 0x00,  // type: XS_READ (2)
                0x01, 0x00, 0x00, 0x00,  // req_id: 1
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x05, 0x00, 0x00, 0x00,  // len: 5
            ] + Array("value".utf8)  // the value, no NUL
            + [
                0x01, 0x00, 0x00, 0x00,  // type: XS_DIRECTORY (1)
                0x02, 0x00, 0x00, 0x00,  // req_id: 2
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x00, 0x00, 0x00, 0x00,  // len: 0, no children
            ]
            + [
                0x03, 0x00, 0x00, 0x00,  // type: XS_GET_PERMS (3)
                0x03, 0x00, 0x00, 0x00,  // req_id: 3
                0x00, 0x00, 0x00, 0x00,  // tx_id: none
                0x06, 0x00, 0x00, 0x00,  // len: 6
            ] + Array("n0\0r5\0".utf8)  // owner entry, entry for domain 5
        try expectParses(
            bytes,
            as: [
                XenStoreMessage(type: .read, requestID: 1, payload: Array("value".utf8)),
                XenStoreMessage(type: .directory, requestID: 2, payload: []),
                XenStoreMessage(
                    type: .getPermissions, requestID: 3, payload: Array("n0\0r5\0".utf8)),
            ])
    }

    @Test func oversizedLengthIsAProtocolErrorForGood() throws {
        let bytes: [UInt8] = [
            0x02, 0x00, 0x00, 0x00,  // type: XS_READ (2)
            0x01, 0x00, 0x00, 0x00,  // req_id: 1
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x01, 0x10, 0x00, 0x00,  // len: 4097, one over XENSTORE_PAYLOAD_MAX
        ]
        var parser = XenStoreMessageParser()
        parser.append(bytes)
        #expect(throws: XenStoreError.self) { try parser.next() }
        parser.append([0, 0, 0, 0])
        #expect(throws: XenStoreError.self) { try parser.next() }
    }

    @Test func exactlyMaximumPayloadParses() throws {
        let payload = [UInt8](repeating: 0x61, count: 4096)
        let message = XenStoreMessage(type: .read, requestID: 1, payload: payload)
        let bytes = try message.encoded()
        #expect(Array(bytes[12..<16]) == [0x00, 0x10, 0x00, 0x00])  // len: 4096
        try expectParses(bytes, as: [message])
    }

    @Test func unknownTypeIsRepresentable() throws {
        let bytes: [UInt8] = [
            0x63, 0x00, 0x00, 0x00,  // type: 99, not in xs_wire.h
            0x01, 0x00, 0x00, 0x00,  // req_id: 1
            0x00, 0x00, 0x00, 0x00,  // tx_id: none
            0x00, 0x00, 0x00, 0x00,  // len: 0
        ]
        try expectParses(
            bytes, as: [XenStoreMessage(type: .init(rawValue: 99), requestID: 1, payload: [])])
        #expect(XenStoreMessageType(rawValue: 99).description == "type 99")
        #expect(throws: XenStoreError.self) {
            try XenStoreRequest(decoding: XenStoreMessage(type: .init(rawValue: 99), payload: []))
        }
    }

    @Test func malformedRequestsAreRejectedByTheDecoder() {
        let malformed: [XenStoreMessage] = [
            XenStoreMessage(type: .read, payload: Array("/a".utf8)),  // no NUL
            XenStoreMessage(type: .read, payload: Array("/a\0/b\0".utf8)),  // two arguments
            XenStoreMessage(type: .watch, payload: Array("/a\0".utf8)),  // no token
            XenStoreMessage(type: .transactionEnd, payload: Array("X\0".utf8)),  // not T/F
            XenStoreMessage(type: .introduce, payload: Array("x\u{0}1\u{0}2\u{0}".utf8)),  // domid
            XenStoreMessage(type: .setPermissions, payload: Array("/a\0q5\0".utf8)),  // perm letter
            XenStoreMessage(type: .setPermissions, payload: Array("/a\0".utf8)),  // no perms
            XenStoreMessage(type: .write, payload: Array("/a".utf8)),  // no NUL after path
            XenStoreMessage(type: .watchEvent, payload: Array("/a\0t\0".utf8)),  // not a request
        ]
        for message in malformed {
            #expect(throws: XenStoreError.self, "\(message)") {
                try XenStoreRequest(decoding: message)
            }
        }
    }
}

@Suite struct PermissionTests {
    @Test func parsesAndRenders() throws {
        let cases: [(String, XenStorePermission)] = [
            ("n0", .init(domid: 0, access: .none)),
            ("r5", .init(domid: 5, access: .read)),
            ("w3", .init(domid: 3, access: .write)),
            ("b1", .init(domid: 1, access: .both)),
            ("b4294967295", .init(domid: 4_294_967_295, access: .both)),
        ]
        for (text, permission) in cases {
            #expect(try XenStorePermission(parsing: text) == permission)
            #expect(permission.description == text)
        }
    }

    @Test(arguments: ["", "r", "x5", "r-1", "r5a", "R5", "r4294967296", " r5"])
    func rejects(_ text: String) {
        #expect(throws: XenStoreError.invalidPermission(text)) {
            try XenStorePermission(parsing: text)
        }
    }

    @Test func accessRule() {
        let perms: [XenStorePermission] = [
            .init(domid: 5, access: .read), .init(domid: 7, access: .none),
            .init(domid: 8, access: .write),
        ]
        #expect(perms.access(for: 0) == .both)  // dom0
        #expect(perms.access(for: 5) == .both)  // owner
        #expect(perms.access(for: 7) == .none)  // listed
        #expect(perms.access(for: 8) == .write)  // listed
        #expect(perms.access(for: 9) == .read)  // everyone else: the owner entry's letter
    }
}
