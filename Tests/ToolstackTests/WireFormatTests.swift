import DomainConfig
import Testing

@testable import Toolstack

@Suite struct SXPTests {
    @Test func rendersBareQuotedAndIntegers() {
        let value = DomainSXP.list([
            .atom("vm"), .list([.atom("name"), .atom("debian1")]),
            .list([.atom("memory"), .integer(256)]),
            .list([.atom("root"), .atom("/dev/hda1 ro")]),
            .list([.atom("empty"), .atom("")]),
            .list([.atom("digits"), .atom("123")]),
            .list([.atom("negative"), .integer(-5)]),
            .list([.atom("quote"), .atom("a\"b\\c\nd\u{1}é")]),
        ])
        #expect(
            XendWire.render(value)
                == #"(vm (name debian1) (memory 256) (root "/dev/hda1 ro") (empty "") "#
                + #"(digits "123") (negative -5) (quote "a\"b\\c\nd\x01\xc3\xa9"))"#)
    }

    @Test func roundTripsEveryShape() throws {
        let atoms = [
            "", "plain", "with space", "123", "-1", "-", "a(b)c", "'single'", "\"double\"",
            "tab\there", "ünïcode", "\u{7f}", "x=1,y=2", "/dev/pts/3",
        ]
        for atom in atoms {
            let value = DomainSXP.list([.atom("k"), .atom(atom), .integer(Int.max), .list([])])
            #expect(
                try XendWire.parse(XendWire.render(value)) == value, "atom \(atom.debugDescription)"
            )
        }
    }

    @Test func readsXendStyleSingleQuotes() throws {
        #expect(
            try XendWire.parse("(args 'console=hvc0 quiet')")
                == .list([.atom("args"), .atom("console=hvc0 quiet")]))
        #expect(
            try XendWire.parse("  (a\n\t(b 1)  )\n")
                == .list([.atom("a"), .list([.atom("b"), .integer(1)])]))
        #expect(try XendWire.parse("'it\\'s'") == .atom("it's"))
    }

    @Test func rejectsMalformedText() {
        let bad = [
            "", "(", ")", "(a", "(a))", "\"open", "(a \"b)", "a b", "\"\\xg\"", "(x) y",
        ]
        for text in bad {
            #expect(throws: ToolstackError.self, "\(text.debugDescription)") {
                try XendWire.parse(text)
            }
        }
    }

    @Test func limitsNesting() throws {
        let deep =
            String(repeating: "(", count: XendWire.maximumDepth + 1)
            + String(repeating: ")", count: XendWire.maximumDepth + 1)
        #expect(throws: ToolstackError.self) { try XendWire.parse(deep) }
        let fine =
            String(repeating: "(", count: XendWire.maximumDepth)
            + String(repeating: ")", count: XendWire.maximumDepth)
        _ = try XendWire.parse(fine)
    }

    @Test func accessorsFindFields() throws {
        let value = try XendWire.parse("(create (vm (name x)) (paused 1) (ip a) (ip b))")
        #expect(value.head == "create")
        #expect(value.field("paused")?.intValue == 1)
        #expect(value.children("ip").compactMap { $0.tail.first?.stringValue } == ["a", "b"])
        #expect(value.field("missing") == nil)
        #expect(DomainSXP.atom("42").intValue == 42)
        #expect(DomainSXP.integer(7).stringValue == "7")
    }
}

@Suite struct FramingTests {
    @Test func frameIsLengthThenPayload() throws {
        #expect(
            try Framing.encode(Array("(ok)".utf8)) == [
                0, 0, 0, 4,  // length 4, big-endian
                0x28, 0x6f, 0x6b, 0x29,  // "(ok)"
            ])
        #expect(try Framing.encode([]) == [0, 0, 0, 0])
        let big = [UInt8](repeating: 0x61, count: 300)
        #expect(try Framing.encode(big).prefix(4) == [0, 0, 1, 0x2c])  // 300 = 0x12c
    }

    @Test func decodesWholeAndByteByByte() throws {
        let payloads: [[UInt8]] = [Array("(list)".utf8), [], Array(repeating: 7, count: 70_000)]
        var stream: [UInt8] = []
        for payload in payloads { stream += try Framing.encode(payload) }

        var whole = FrameDecoder()
        whole.append(stream)
        var decoded: [[UInt8]] = []
        while let frame = try whole.next() { decoded.append(frame) }
        #expect(decoded == payloads)
        #expect(whole.pendingCount == 0)

        var trickle = FrameDecoder()
        decoded = []
        for byte in stream {
            trickle.append([byte])
            while let frame = try trickle.next() { decoded.append(frame) }
        }
        #expect(decoded == payloads)
    }

    @Test func waitsForTheRestOfAFrame() throws {
        var decoder = FrameDecoder()
        decoder.append([0, 0, 0, 3, 0x61])
        #expect(try decoder.next() == nil)
        decoder.append([0x62, 0x63, 0, 0])
        #expect(try decoder.next() == Array("abc".utf8))
        #expect(try decoder.next() == nil)
        #expect(decoder.pendingCount == 2)
    }

    @Test func refusesOversizedFrames() {
        var decoder = FrameDecoder()
        decoder.append([0xff, 0xff, 0xff, 0xff])
        #expect(throws: ToolstackError.self) { try decoder.next() }
        #expect(throws: ToolstackError.self) {
            try Framing.encode([UInt8](repeating: 0, count: Framing.maximumPayload + 1))
        }
    }
}

@Suite struct MessageTests {
    /// Sends a request through the whole wire path, fed one byte at a time.
    func roundTrip(_ request: XendRequest) throws -> XendRequest {
        let bytes = try XendWire.frame(request.sxp)
        var decoder = FrameDecoder()
        var payload: [UInt8]?
        for byte in bytes {
            #expect(payload == nil)
            decoder.append([byte])
            payload = try decoder.next()
        }
        return try XendRequest(try XendWire.parse(try #require(payload)))
    }

    func roundTrip(_ response: XendResponse) throws -> XendResponse {
        let bytes = try XendWire.frame(response.sxp)
        var decoder = FrameDecoder()
        decoder.append(bytes)
        return try XendResponse(try XendWire.parse(try #require(try decoder.next())))
    }

    @Test func everyRequestSurvivesTheWire() throws {
        let spec = try Seed.spec(Seed.debian1)
        let requests: [XendRequest] = [
            .create(spec, skipDevices: true, paused: false),
            .create(try Seed.spec(Seed.netbsd), skipDevices: false, paused: true),
            .list(domain: nil), .list(domain: "debian1"), .destroy(domain: "7"),
            .shutdown(domain: "demo", reboot: false, wait: true, timeoutSeconds: 300),
            .shutdown(domain: "demo", reboot: true, wait: false, timeoutSeconds: 0),
            .pause(domain: "demo"), .unpause(domain: "demo"),
            .save(domain: "demo", path: "/var/lib/xen/save/demo"),
            .restore(path: "/var/lib/xen/save/demo", paused: true), .info, .dmesg(clear: true),
        ]
        for request in requests {
            var expected = request
            // Warnings stay with xm; they are not part of the request.
            if case .create(var spec, let skip, let paused) = request {
                spec.warnings = []
                expected = .create(spec, skipDevices: skip, paused: paused)
            }
            #expect(try roundTrip(request) == expected)
        }
    }

    @Test func requestLiteral() {
        #expect(
            XendWire.render(XendRequest.pause(domain: "debian 1").sxp)
                == #"(pause (domain "debian 1"))"#
        )
        #expect(XendWire.render(XendRequest.list(domain: nil).sxp) == "(list)")
    }

    @Test func everyResponseSurvivesTheWire() throws {
        let responses: [XendResponse] = [
            .done, .message("saved"), .created(domid: 3, name: "demo"),
            .domains([
                DomainSummary(
                    name: "Domain-0", domid: 0, memoryMiB: 1024, vcpus: 2,
                    state: DomainStateFlags(running: true), cpuTime: 123_456_789_012),
                DomainSummary(
                    name: "demo", domid: 3, memoryMiB: 128, vcpus: 1,
                    state: DomainStateFlags(blocked: true, paused: true), cpuTime: 0,
                    spec: try Harness.demoSpec()),
            ]),
            .domains([]),
            .info([("host", "proxenos"), ("xen_major", "4")]),
            .text("(XEN) line one\n(XEN) line two\n"),
            .failure(kind: "no-such-domain", message: "no domain 'x'"),
        ]
        for response in responses {
            #expect(try roundTrip(response) == response)
        }
    }

    @Test func rejectsMalformedRequests() {
        let bad = [
            "(frobnicate)", "(pause)", "(pause (domain \"\"))", "(save (domain x) (file rel))",
            "(create)", "(create (vm (name x)))", "(shutdown (domain x) (timeout -1))",
            "(console (domain x) (wait 99999))", "ok",
        ]
        for text in bad {
            #expect(throws: ToolstackError.self, "\(text)") {
                try XendRequest(try XendWire.parse(text))
            }
        }
    }

    @Test func errorResponsesCarryKindAndMessage() throws {
        let response = XendResponse(ToolstackError.nameInUse(name: "demo", domid: 4))
        guard case .failure(let kind, let message) = try roundTrip(response) else {
            Issue.record("not a failure")
            return
        }
        #expect(kind == "name-in-use")
        #expect(message.contains("'demo'") && message.contains("id 4"))
    }
}
