import Testing

@testable import SXP

/// Parses whole and one byte at a time; both must agree exactly.
private func parseBothWays(_ text: String) -> Result<[SXPNode], SXPError> {
    let whole = Result { () throws(SXPError) in try SXPParser.parse(text, file: "t.sxp") }
    var parser = SXPParser(file: "t.sxp")
    let byByte = Result { () throws(SXPError) in
        for byte in text.utf8 { try parser.feed([byte]) }
        return try parser.finish()
    }
    #expect(
        whole == byByte, "byte-by-byte parse differs from whole parse for \(text.debugDescription)")
    // And in uneven chunks, which cross token boundaries differently.
    var chunked = SXPParser(file: "t.sxp")
    let bytes = Array(text.utf8)
    let viaChunks = Result { () throws(SXPError) in
        var index = 0
        var size = 1
        while index < bytes.count {
            let end = min(bytes.count, index + size)
            try chunked.feed(bytes[index..<end])
            index = end
            size = size % 7 + 2
        }
        return try chunked.finish()
    }
    #expect(whole == viaChunks, "chunked parse differs for \(text.debugDescription)")
    return whole
}

private func parse(_ text: String) throws -> [SXPNode] {
    try parseBothWays(text).get()
}

private func error(_ text: String) -> SXPError? {
    if case .failure(let error) = parseBothWays(text) { return error }
    return nil
}

private func at(_ line: Int, _ column: Int) -> SXPLocation {
    SXPLocation(line: line, column: column)
}

/// The values of nodes with locations dropped, for comparing shapes.
private func shape(_ nodes: [SXPNode]) -> [String] { nodes.map { SXPWriter.config.render($0) } }

@Suite("SXP parser")
struct SXPParserTests {
    @Test func bareSymbolsAndNestedLists() throws {
        let nodes = try parse("(network-script network-bridge)\n(a (b (c d)) ())")
        #expect(nodes.count == 2)
        #expect(
            nodes[0].value
                == .list([
                    SXPNode(.symbol("network-script"), at: at(1, 2)),
                    SXPNode(.symbol("network-bridge"), at: at(1, 17)),
                ]))
        #expect(nodes[0].location == at(1, 1))
        guard case .list(let items) = nodes[1].value else {
            Issue.record("not a list")
            return
        }
        #expect(items.count == 3)
        #expect(items[1].location == at(2, 4))
        #expect(shape([items[1]]) == ["(b (c d))"])
        #expect(items[2].value == .list([]))
        #expect(items[2].location == at(2, 14))
    }

    @Test func commentsRunToEndOfLine() throws {
        let text = """
            # a comment (with parens) and 'quotes
            (logfile /var/log/xen/xend.log) # trailing
            #(network-script network-route)
            (loglevel DEBUG)#no space
            """
        let nodes = try parse(text)
        #expect(shape(nodes) == ["(logfile /var/log/xen/xend.log)", "(loglevel DEBUG)"])
        #expect(nodes[1].location == at(4, 1))
    }

    @Test func hashEndsASymbol() throws {
        let nodes = try parse("(a b#c\nd)")
        #expect(shape(nodes) == ["(a b d)"])
    }

    @Test func singleAndDoubleQuotedStrings() throws {
        let nodes = try parse(#"('network-bridge netdev=eth1' "two words" '' "it's" 'say "hi"')"#)
        guard case .list(let items) = nodes[0].value else {
            Issue.record("not a list")
            return
        }
        #expect(
            items.map(\.value) == [
                .string("network-bridge netdev=eth1"), .string("two words"), .string(""),
                .string("it's"), .string("say \"hi\""),
            ])
        #expect(items.map(\.location.column) == [2, 31, 43, 46, 53])
    }

    @Test func escapes() throws {
        let nodes = try parse(
            #"("\a\b\t\n\v\f\r\\\'\"" '\x41\x4a\x7e' "\101\60\0z" "\x9g" "\q\.")"#)
        guard case .list(let items) = nodes[0].value else {
            Issue.record("not a list")
            return
        }
        #expect(items[0].value == .string("\u{07}\u{08}\t\n\u{0b}\u{0c}\r\\'\""))
        #expect(items[1].value == .string("AJ~"))
        // Octal takes up to three digits; a shorter run ends at a non-digit.
        #expect(items[2].value == .string("A0\u{00}z"))
        // One hex digit is enough when the next character is not one.
        #expect(items[3].value == .string("\u{09}g"))
        // Unknown escapes keep their backslash, as xend's reader does.
        #expect(items[4].value == .string("\\q\\."))
    }

    @Test func xendStyleDoubledBackslash() throws {
        let nodes = try parse(
            #"(xend-relocation-hosts-allow '^localhost$ ^localhost\\.localdomain$')"#)
        guard case .list(let items) = nodes[0].value else {
            Issue.record("not a list")
            return
        }
        #expect(items[1].value == .string(#"^localhost$ ^localhost\.localdomain$"#))
    }

    @Test func stringsSpanLinesAndKeepLocations() throws {
        let nodes = try parse("(a 'one\ntwo' b)")
        guard case .list(let items) = nodes[0].value else {
            Issue.record("not a list")
            return
        }
        #expect(items[1].value == .string("one\ntwo"))
        #expect(items[2].location == at(2, 6))
    }

    @Test func numbers() throws {
        let nodes = try parse("(196 -1 +7 0 1.5 -2.25e3 1.2.3.4 0x10 1e5 - 12a)")
        guard case .list(let items) = nodes[0].value else {
            Issue.record("not a list")
            return
        }
        #expect(
            items.map(\.value) == [
                .integer(196), .integer(-1), .integer(7), .integer(0), .decimal(1.5),
                .decimal(-2250), .symbol("1.2.3.4"), .symbol("0x10"), .symbol("1e5"), .symbol("-"),
                .symbol("12a"),
            ])
        #expect(items[0].atomText == "196")
    }

    @Test func utf8InStringsAndComments() throws {
        let nodes = try parse("# Grüße\n(name \"Überbrückung\")")
        #expect(nodes[0].listItems?[1].value == .string("Überbrückung"))
    }

    @Test func whitespaceKinds() throws {
        let nodes = try parse("\t(a\r\n\u{0b}b\u{0c} c )\r\n")
        #expect(shape(nodes) == ["(a b c)"])
        #expect(nodes[0].location == at(1, 2))
        #expect(nodes[0].listItems?[1].location == at(2, 2))
    }

    @Test func emptyInput() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("   # only a comment").isEmpty)
    }

    @Test func topLevelAtoms() throws {
        let nodes = try parse("word 'str' 5")
        #expect(nodes.map(\.value) == [.symbol("word"), .string("str"), .integer(5)])
    }

    // MARK: errors, each at its line and column

    @Test func unexpectedCloseParen() {
        let failure = error("(a b)\n  c)")
        #expect(failure?.location == at(2, 4))
        #expect(failure?.message.contains("')'") == true)
        #expect(failure?.description.hasPrefix("t.sxp:2:4: ") == true)
    }

    @Test func unclosedListPointsAtItsParen() {
        let failure = error("(a b)\n(c\n  (d e)\n")
        #expect(failure?.location == at(2, 1))
        // The innermost unclosed list is reported.
        #expect(error("(a\n (b\n")?.location == at(2, 2))
    }

    @Test func unclosedStringPointsAtItsQuote() {
        #expect(error("(a\n   'never closed)\n")?.location == at(2, 4))
        #expect(error("(a \"x\\\"")?.location == at(1, 4))
        // An escape pending at end of file is still an open string.
        #expect(error("(a 'x\\")?.location == at(1, 4))
    }

    @Test func badHexEscape() {
        let failure = error("(a\n 'ok \\xzz')")
        #expect(failure?.location == at(2, 6))
        #expect(failure?.message.contains("\\x") == true)
    }

    @Test func octalEscapeOutOfRange() {
        let failure = error("('\\101' '\\400')")
        #expect(failure?.location == at(1, 10))
    }

    @Test func controlCharacterOutsideString() {
        let failure = error("(a\u{01}b)")
        #expect(failure?.location == at(1, 3))
        #expect(error("(a)\n\u{7f}")?.location == at(2, 1))
    }

    @Test func nonASCIIOutsideString() {
        let failure = error("(bridge brü)")
        #expect(failure?.location == at(1, 11))
        #expect(failure?.message.contains("quote") == true)
    }

    @Test func integerOutOfRange() {
        let failure = error("(dom0-min-mem\n  99999999999999999999)")
        #expect(failure?.location == at(2, 3))
    }

    @Test func invalidUTF8InString() {
        let failure = error("(a \"\\xff\")")
        #expect(failure?.location == at(1, 4))
    }

    @Test func errorIsSticky() throws {
        var parser = SXPParser(file: "x")
        #expect(throws: SXPError.self) { try parser.feed(Array(")".utf8)) }
        #expect(throws: SXPError.self) { try parser.feed(Array("(a)".utf8)) }
        #expect(throws: SXPError.self) { _ = try parser.finish() }
    }

    /// Every byte position of a file that ends early is either fine or an
    /// error located inside the prefix; never a trap.
    @Test func everyPrefixOfAConfigFile() {
        let text = """
            # xend
            (network-script 'network-bridge netdev=eth1 bridge=xenbr1 antispoof=yes')
            (vif-script "vif-bridge bridge=xenbr1")
            (dom0-min-mem 196) (xen-api-server ((9363 '^localhost$ example\\\\.com$') (unix)))
            """
        let bytes = Array(text.utf8)
        for end in 0...bytes.count {
            let prefix = String(decoding: bytes[..<end], as: UTF8.self)
            if case .failure(let failure) = parseBothWays(prefix) {
                #expect(failure.location.line <= 4)
            }
        }
    }

    // MARK: the seed talk's key forms

    @Test func seedTalkForms() throws {
        // "xend-Konfiguration: im Prinzip 2 mögliche Netzwerkkonfigurationen:
        // Bridging, Routing" — the forms xend-config.sxp uses for them.
        let text = """
            (network-script network-bridge)
            (vif-script vif-bridge)
            #(network-script network-route)
            #(vif-script     vif-route)
            (network-script 'network-bridge netdev=eth1 bridge=xenbr1 antispoof=yes')
            (dom0-min-mem 196)
            (dom0-cpus 0)
            (xend-relocation-hosts-allow '^localhost$ ^localhost\\\\.localdomain$')
            (xen-api-server ((9363 '^localhost$ example\\\\.com$')))
            (vnc-listen '127.0.0.1')
            (xend-address '')
            """
        let nodes = try parse(text)
        #expect(nodes.count == 9)
        #expect(
            nodes[2].listItems?[1].value
                == .string("network-bridge netdev=eth1 bridge=xenbr1 antispoof=yes"))
        #expect(nodes[2].location == at(5, 1))
        #expect(nodes[3].listItems?[1].value == .integer(196))
        #expect(nodes[6].listItems?[1].listItems?[0].listItems?[0].value == .integer(9363))
        #expect(nodes[8].listItems?[1].value == .string(""))
    }

    // MARK: writer

    @Test func writerRoundTrips() throws {
        let text = #"(a "b c" 'd' -5 2.5 ("\n\t\x01\"q\\" sym/with.dots) () "Grüße" "123" "")"#
        let nodes = try parse(text)
        let rendered = nodes.map { SXPWriter.config.render($0) }.joined(separator: "\n")
        let again = try parse(rendered)
        #expect(again.map(\.value.stripped) == nodes.map(\.value.stripped))
        #expect(SXPWriter.config.render(.symbol("123")) == "\"123\"")
        #expect(SXPWriter.config.render(.symbol("has space")) == "\"has space\"")
        #expect(SXPWriter.config.render(.symbol("eth0")) == "eth0")
    }
}

extension SXPNode.Value {
    /// The value with every location zeroed, so shapes compare equal.
    var stripped: SXPNode.Value {
        switch self {
        case .list(let items):
            return .list(
                items.map {
                    SXPNode($0.value.stripped, at: SXPLocation(line: 0, column: 0))
                })
        default:
            return self
        }
    }
}
