import Testing

@testable import SXP

private func list(_ values: SXPNode.Value...) -> SXPNode.Value {
    .list(values.map { SXPNode($0) })
}

/// The three styles side by side: the same symbols, each printed the way
/// its consumer (xend-config.sxp, xend's socket, xm's output) expects.
@Suite("SXP writer styles")
struct SXPWriterTests {
    @Test func bareSymbolsPerStyle() {
        // (text, config, wire, python)
        let cases: [(String, String, String, String)] = [
            ("eth0", "eth0", "eth0", "eth0"),
            ("/dev/hda1", "/dev/hda1", "/dev/hda1", "/dev/hda1"),
            ("a=b", "a=b", "a=b", "'a=b'"),
            ("10Mb/s@50ms", "10Mb/s@50ms", "10Mb/s@50ms", "'10Mb/s@50ms'"),
            ("@", "@", "@", "@"),
            ("a*b", "a*b", "\"a*b\"", "'a*b'"),
            ("123", "\"123\"", "\"123\"", "123"),
            ("1.5", "\"1.5\"", "\"1.5\"", "1.5"),
            ("-", "-", "-", "-"),
            ("", "\"\"", "\"\"", ""),
            ("it's", "\"it's\"", "\"it's\"", "\"it's\""),
            ("has space", "\"has space\"", "\"has space\"", "'has space'"),
        ]
        for (text, config, wire, python) in cases {
            #expect(SXPWriter.config.render(.symbol(text)) == config, "\(text)")
            #expect(SXPWriter.wire.render(.symbol(text)) == wire, "\(text)")
            #expect(SXPWriter.python.render(.symbol(text)) == python, "\(text)")
        }
    }

    @Test func quotingPerStyle() {
        let text = "a\"b\\c\nd\u{1}é\t'"
        #expect(SXPWriter.config.quote(text) == #""a\"b\\c\nd\x01é\t'""#)
        #expect(SXPWriter.wire.quote(text) == #""a\"b\\c\nd\x01\xc3\xa9\t'""#)
        #expect(SXPWriter.python.quote(text) == #"'a"b\\c\nd\x01\xc3\xa9\t\''"#)
        #expect(SXPWriter.python.quote("it's") == #""it's""#)
    }

    @Test func listsNumbersAndStrings() {
        let value = list(.symbol("vm"), .integer(-5), .decimal(2.5), .string("x"), list())
        #expect(SXPWriter.config.render(value) == #"(vm -5 2.5 "x" ())"#)
        #expect(SXPWriter.wire.render(value) == #"(vm -5 2.5 "x" ())"#)
        #expect(SXPWriter.python.render(value) == "(vm -5 2.5 'x' ())")
    }

    /// What config and wire print, the parser reads back as the same
    /// symbols and strings.
    @Test func configAndWireReadBack() throws {
        let symbols = [
            "", "plain", "with space", "123", "-1", "+7", "1.5", "-", "a(b)c", "'single'",
            "\"double\"", "tab\there", "ünïcode", "\u{7f}", "x=1,y=2", "/dev/pts/3", "#hash",
            "99999999999999999999",
        ]
        for writer in [SXPWriter.config, SXPWriter.wire] {
            for symbol in symbols {
                let text = writer.render(.symbol(symbol))
                let back = try SXPParser.parse(text, file: "t")
                #expect(back.count == 1 && back.first?.atomText == symbol, "\(text)")
            }
        }
    }

    @Test func prettyPrintBreaksOnlyWhatDoesNotFit() {
        let value = list(.symbol("vm"), list(.symbol("name"), .symbol("debian1")), .integer(7))
        #expect(SXPWriter.python.prettyPrinted(value) == "(vm (name debian1) 7)\n")
        #expect(
            SXPWriter.python.prettyPrinted(value, width: 10)
                == "(vm\n    (name\n        debian1\n    )\n    7\n)\n")
    }

    @Test func depthLimit() throws {
        #expect(throws: SXPError.self) {
            try SXPParser.parse("(((a)))", file: "m", maximumDepth: 2)
        }
        #expect(try SXPParser.parse("((a))", file: "m", maximumDepth: 2).count == 1)
        let failure = Result { () throws(SXPError) in
            try SXPParser.parse("(\n ((a)))", file: "m", maximumDepth: 2)
        }
        guard case .failure(let error) = failure else {
            Issue.record("parsed")
            return
        }
        #expect(error.location == SXPLocation(line: 2, column: 3))
    }
}
