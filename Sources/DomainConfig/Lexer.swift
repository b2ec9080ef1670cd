/// Tokens of the Python subset that xm config files use.
struct Token: Equatable {
    enum Kind: Equatable {
        case name(String)
        case integer(Int)
        case string(String)
        case op(String)
        case newline
        /// The line starts deeper than the one before (a block's body).
        case indent
        /// The line goes back to an outer block's depth (one per level).
        case dedent
        case end
    }

    var kind: Kind
    var location: SourceLocation
}

/// Splits config text into tokens the way Python's tokenizer does for the
/// subset we support: newlines end statements except inside brackets or
/// after a backslash, `#` starts a comment, adjacent string literals are
/// separate tokens (the parser joins them), and a line's indentation
/// becomes `indent`/`dedent` tokens (blocks of `def` and `if`).
struct Lexer {
    private let bytes: [UInt8]
    private let file: String
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var open: [(bracket: String, location: SourceLocation)] = []  // unclosed (, [, {
    private var depth: Int { open.count }
    private var atLineStart = true
    private var tokens: [Token] = []
    /// Columns of the enclosing blocks' indentation, outermost (0) first.
    private var indents: [Int] = [0]

    /// Python operators, longest first so `//=` wins over `//` and `/`.
    private static let operators: [String] = [
        "**=", "//=", ">>=", "<<=",
        "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "**", "//", "==", "!=", "<=", ">=",
        "<>", "<<", ">>", "->",
        "+", "-", "*", "/", "%", "=", "(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "<",
        ">", "&", "|", "^", "~", "@", "`",
    ]

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    static func tokenize(_ bytes: [UInt8], file: String) throws(DomainConfigError) -> [Token] {
        var lexer = Lexer(bytes: bytes, file: file)
        return try lexer.run()
    }

    private func location(at offset: Int) -> SourceLocation {
        SourceLocation(file: file, line: line, column: offset - lineStart + 1)
    }

    private func peek(_ ahead: Int = 0) -> UInt8? {
        let position = index + ahead
        return position < bytes.count ? bytes[position] : nil
    }

    private mutating func newLine(after offset: Int) {
        line += 1
        lineStart = offset
    }

    private mutating func run() throws(DomainConfigError) -> [Token] {
        // Python accepts a UTF-8 byte-order mark at the very start.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            index = 3
            lineStart = 3
        }
        while index < bytes.count {
            if atLineStart && depth == 0 {
                try startLogicalLine()
                continue
            }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), 0x0C:
                index += 1
            case UInt8(ascii: "\r") where peek(1) == UInt8(ascii: "\n"):
                index += 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                if depth == 0 {
                    emit(.newline, at: index)
                    atLineStart = true
                }
                index += 1
                newLine(after: index)
            case UInt8(ascii: "#"):
                skipComment()
            case UInt8(ascii: "\\"):
                try lineContinuation()
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                try number()
            case UInt8(ascii: "."):
                if let next = peek(1), isDigit(next) {
                    throw .syntax(
                        location(at: index), "floating-point numbers are not supported")
                }
                try operatorToken()
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                try string(prefixLength: 0, raw: false)
            default:
                if isNameStart(byte) {
                    if let (length, raw) = stringPrefix() {
                        try string(prefixLength: length, raw: raw)
                    } else {
                        name()
                    }
                } else {
                    try operatorToken()
                }
            }
        }
        if let unclosed = open.last {
            throw .syntax(unclosed.location, "'\(unclosed.bracket)' is never closed")
        }
        if !atLineStart { emit(.newline, at: index) }
        while indents.count > 1 {
            indents.removeLast()
            emit(.dedent, at: index)
        }
        emit(.end, at: index)
        return tokens
    }

    private mutating func emit(_ kind: Token.Kind, at offset: Int) {
        tokens.append(Token(kind: kind, location: location(at: offset)))
    }

    /// At the start of a line outside brackets: skip blank and comment-only
    /// lines; a statement's indentation opens or closes blocks.
    private mutating func startLogicalLine() throws(DomainConfigError) {
        var position = index
        var column = 0
        while position < bytes.count,
            bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: "\t")
                || bytes[position] == 0x0C
        {
            // Python's rule: a tab advances to the next multiple of 8, a
            // form feed starts the count again.
            switch bytes[position] {
            case UInt8(ascii: "\t"): column = (column / 8 + 1) * 8
            case 0x0C: column = 0
            default: column += 1
            }
            position += 1
        }
        guard position < bytes.count else {
            index = position
            return
        }
        switch bytes[position] {
        case UInt8(ascii: "#"):
            index = position
            skipComment()
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
            if bytes[position] == UInt8(ascii: "\r"), position + 1 < bytes.count,
                bytes[position + 1] == UInt8(ascii: "\n")
            {
                position += 1
            }
            index = position + 1
            newLine(after: index)
        case UInt8(ascii: "\\"):
            // A continuation line that starts with a backslash: let run() join it.
            index = position
            atLineStart = false
        default:
            try indentation(column, at: position)
            index = position
            atLineStart = false
        }
    }

    /// Emits `indent` for a line deeper than its block, one `dedent` per
    /// block it leaves; the parser decides whether a block may open here.
    private mutating func indentation(_ column: Int, at position: Int) throws(DomainConfigError) {
        let top = indents.last ?? 0
        if column > top {
            indents.append(column)
            emit(.indent, at: position)
            return
        }
        while let last = indents.last, column < last {
            indents.removeLast()
            emit(.dedent, at: position)
        }
        if indents.last != column {
            throw .syntax(
                location(at: position), "unindent does not match any outer indentation level")
        }
    }

    private mutating func skipComment() {
        while index < bytes.count, bytes[index] != UInt8(ascii: "\n"),
            bytes[index] != UInt8(ascii: "\r")
        {
            index += 1
        }
    }

    private mutating func lineContinuation() throws(DomainConfigError) {
        let start = index
        index += 1
        switch peek() {
        case UInt8(ascii: "\r"):
            index += peek(1) == UInt8(ascii: "\n") ? 2 : 1
        case UInt8(ascii: "\n"):
            index += 1
        default:
            throw .syntax(location(at: start), "unexpected character after line continuation")
        }
        newLine(after: index)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func isNameStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_")
    }

    private func isNameByte(_ byte: UInt8) -> Bool {
        isNameStart(byte) || isDigit(byte)
    }

    /// A string prefix (r, u, b, ur, br, rb) directly followed by a quote.
    private func stringPrefix() -> (Int, Bool)? {
        var length = 0
        var raw = false
        while length < 2, let byte = peek(length) {
            switch byte | 0x20 {  // lower-case ASCII letters
            case UInt8(ascii: "r"): raw = true
            case UInt8(ascii: "u"), UInt8(ascii: "b"): break
            default:
                if length > 0, byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                    return (length, raw)
                }
                return nil
            }
            length += 1
        }
        if let byte = peek(length), byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
            return (length, raw)
        }
        return nil
    }

    private mutating func name() {
        let start = index
        while let byte = peek(), isNameByte(byte) { index += 1 }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        emit(.name(text), at: start)
    }

    private mutating func number() throws(DomainConfigError) {
        let start = index
        while let byte = peek(), isNameByte(byte) || byte == UInt8(ascii: ".") { index += 1 }
        var text = String(decoding: bytes[start..<index], as: UTF8.self)
        let here = location(at: start)
        // Python 2 long literals: 10L.
        if text.count > 1, text.last == "L" || text.last == "l" { text.removeLast() }
        let lower = text.lowercased()
        let value: Int?
        if lower.hasPrefix("0x") {
            value = Int(lower.dropFirst(2), radix: 16)
        } else if lower.hasPrefix("0o") {
            value = Int(lower.dropFirst(2), radix: 8)
        } else if lower.hasPrefix("0b") {
            value = Int(lower.dropFirst(2), radix: 2)
        } else if lower.contains(".") || lower.contains("e") || lower.hasSuffix("j") {
            throw .syntax(here, "floating-point numbers are not supported: \(text)")
        } else if lower.count > 1 && lower.hasPrefix("0") {
            // Python 2 reads a leading zero as octal (xm ran on Python 2).
            value = Int(lower.dropFirst(), radix: 8)
        } else {
            value = Int(lower, radix: 10)
        }
        guard let value else {
            throw .syntax(here, "invalid or too large integer literal: \(text)")
        }
        emit(.integer(value), at: start)
    }

    private mutating func operatorToken() throws(DomainConfigError) {
        let start = index
        for candidate in Self.operators {
            let utf8 = Array(candidate.utf8)
            if index + utf8.count <= bytes.count,
                bytes[index..<index + utf8.count].elementsEqual(utf8)
            {
                index += utf8.count
                switch candidate {
                case "(", "[", "{":
                    open.append((candidate, location(at: start)))
                case ")", "]", "}":
                    guard let opening = open.last,
                        ["(": ")", "[": "]", "{": "}"][opening.bracket] == candidate
                    else {
                        throw .syntax(location(at: start), "unmatched '\(candidate)'")
                    }
                    open.removeLast()
                default: break
                }
                emit(.op(candidate), at: start)
                return
            }
        }
        let byte = bytes[index]
        let shown =
            byte >= 0x20 && byte < 0x7F
            ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        throw .syntax(location(at: start), "unexpected character \(shown)")
    }

    /// A string literal with Python 2 `str` escapes; triple quotes allowed.
    private mutating func string(prefixLength: Int, raw: Bool) throws(DomainConfigError) {
        let start = index
        let startLocation = location(at: start)
        index += prefixLength
        let quote = bytes[index]
        let triple = peek(1) == quote && peek(2) == quote
        index += triple ? 3 : 1
        var value: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw .syntax(startLocation, "unterminated string literal")
            }
            if byte == quote {
                if !triple {
                    index += 1
                    break
                }
                if peek(1) == quote && peek(2) == quote {
                    index += 3
                    break
                }
                value.append(byte)
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                guard triple else {
                    throw .syntax(startLocation, "unterminated string literal (end of line)")
                }
                if byte == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { index += 1 }
                value.append(UInt8(ascii: "\n"))
                index += 1
                newLine(after: index)
                continue
            }
            if byte == UInt8(ascii: "\\") {
                try escape(into: &value, raw: raw)
                continue
            }
            value.append(byte)
            index += 1
        }
        emit(.string(String(decoding: value, as: UTF8.self)), at: start)
    }

    private mutating func escape(into value: inout [UInt8], raw: Bool) throws(DomainConfigError) {
        let escapeLocation = location(at: index)
        index += 1  // the backslash
        guard let next = peek() else {
            throw .syntax(escapeLocation, "unterminated string literal")
        }
        if next == UInt8(ascii: "\n") || next == UInt8(ascii: "\r") {
            // Backslash-newline: the line continues inside the string.
            if raw { value.append(UInt8(ascii: "\\")) }
            if next == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { index += 1 }
            if raw { value.append(UInt8(ascii: "\n")) }
            index += 1
            newLine(after: index)
            return
        }
        if raw {
            // In raw strings the backslash stays; it only protects the quote.
            value.append(UInt8(ascii: "\\"))
            value.append(next)
            index += 1
            return
        }
        index += 1
        switch next {
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): value.append(next)
        case UInt8(ascii: "a"): value.append(0x07)
        case UInt8(ascii: "b"): value.append(0x08)
        case UInt8(ascii: "f"): value.append(0x0C)
        case UInt8(ascii: "n"): value.append(0x0A)
        case UInt8(ascii: "r"): value.append(0x0D)
        case UInt8(ascii: "t"): value.append(0x09)
        case UInt8(ascii: "v"): value.append(0x0B)
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
            var code = Int(next - UInt8(ascii: "0"))
            var digits = 1
            while digits < 3, let byte = peek(), byte >= UInt8(ascii: "0"),
                byte <= UInt8(ascii: "7")
            {
                code = code * 8 + Int(byte - UInt8(ascii: "0"))
                index += 1
                digits += 1
            }
            value.append(UInt8(truncatingIfNeeded: code))
        case UInt8(ascii: "x"):
            guard let high = peek().flatMap(hexValue), let low = peek(1).flatMap(hexValue) else {
                throw .syntax(escapeLocation, "invalid \\x escape (needs two hex digits)")
            }
            value.append(high << 4 | low)
            index += 2
        default:
            // Python keeps unknown escapes verbatim ("\d" is backslash, d).
            value.append(UInt8(ascii: "\\"))
            value.append(next)
        }
    }

    private func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
