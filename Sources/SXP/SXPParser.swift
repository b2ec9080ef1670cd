/// An incremental reader for the S-expression dialect of xend's `sxp.py`,
/// which xend-config.sxp, xend's socket messages and its save files share.
///
/// Feed it bytes in any chunking (a whole file or one byte at a time) and
/// call ``finish()`` at end of input; the result and every error location are
/// the same either way. The dialect follows xend's `sxp.py`:
///
/// - `#` starts a comment that runs to the end of the line;
/// - `(` and `)` delimit lists, which nest;
/// - a bare word runs until whitespace, a parenthesis or `#`;
/// - strings are quoted with `"` or `'`, may span lines, and know the escapes
///   `\a \b \t \n \v \f \r \\ \' \"`, `\xH[H]` and `\o[o[o]]` (octal); an
///   unknown escape keeps its backslash, as xend does;
/// - words that are decimal integers or fractions become numbers.
///
/// Errors carry file, line and column; after the first error the parser
/// stays failed.
public struct SXPParser: Sendable {
    /// The file name used in error messages.
    public let file: String
    /// How deeply lists may nest; a deeper one is an error (input from a
    /// socket should not get to choose how much the parser holds open).
    public let maximumDepth: Int

    private enum Escape: Sendable {
        case none
        case pending(SXPLocation)
        case hex(SXPLocation, value: Int, digits: Int)
        case octal(SXPLocation, value: Int, digits: Int)
    }

    private enum State: Sendable {
        case idle
        case comment
        case atom(start: SXPLocation, bytes: [UInt8])
        case string(start: SXPLocation, delimiter: UInt8, bytes: [UInt8], escape: Escape)
    }

    private struct OpenList: Sendable {
        var location: SXPLocation
        var items: [SXPNode] = []
    }

    private var state: State = .idle
    private var open: [OpenList] = []
    private var done: [SXPNode] = []
    private var line = 1
    private var column = 0
    private var afterNewline = false
    private var failure: SXPError?

    public init(file: String, maximumDepth: Int = .max) {
        self.file = file
        self.maximumDepth = maximumDepth
    }

    /// Parses a whole buffer.
    public static func parse<Bytes: Sequence>(
        _ bytes: Bytes, file: String, maximumDepth: Int = .max
    ) throws(SXPError) -> [SXPNode] where Bytes.Element == UInt8 {
        var parser = SXPParser(file: file, maximumDepth: maximumDepth)
        try parser.feed(bytes)
        return try parser.finish()
    }

    /// Parses a whole string.
    public static func parse(
        _ text: String, file: String, maximumDepth: Int = .max
    ) throws(SXPError) -> [SXPNode] {
        try parse(Array(text.utf8), file: file, maximumDepth: maximumDepth)
    }

    /// Consumes more input.
    public mutating func feed<Bytes: Sequence>(
        _ bytes: Bytes
    ) throws(SXPError) where Bytes.Element == UInt8 {
        if let failure { throw failure }
        for byte in bytes {
            if afterNewline {
                line += 1
                column = 1
                afterNewline = false
            } else {
                column += 1
            }
            let here = SXPLocation(line: line, column: column)
            do throws(SXPError) {
                try consume(byte, at: here)
            } catch {
                failure = error
                throw error
            }
            if byte == UInt8(ascii: "\n") { afterNewline = true }
        }
    }

    /// Ends the input and returns the top-level expressions in file order.
    public mutating func finish() throws(SXPError) -> [SXPNode] {
        if let failure { throw failure }
        do throws(SXPError) {
            switch state {
            case .idle, .comment:
                break
            case .atom(let start, let bytes):
                try emit(atom(bytes, at: start))
            case .string(let start, let delimiter, _, _):
                let quote = Character(Unicode.Scalar(delimiter))
                throw error(at: start, "string opened with \(quote) is not closed")
            }
            state = .idle
            if let innermost = open.last {
                throw error(at: innermost.location, "'(' is not closed before end of file")
            }
        } catch {
            failure = error
            throw error
        }
        let result = done
        done = []
        return result
    }

    // MARK: the state machine

    private mutating func consume(_ byte: UInt8, at here: SXPLocation) throws(SXPError) {
        switch state {
        case .idle:
            try begin(byte, at: here)
        case .comment:
            if byte == UInt8(ascii: "\n") { state = .idle }
        case .atom(let start, var bytes):
            if Self.endsAtom(byte) {
                state = .idle
                try emit(atom(bytes, at: start))
                try begin(byte, at: here)
            } else {
                try checkAtomByte(byte, at: here)
                bytes.append(byte)
                state = .atom(start: start, bytes: bytes)
            }
        case .string(let start, let delimiter, var bytes, let escape):
            let next = try stringByte(byte, at: here, escape: escape, into: &bytes, delimiter)
            if let next {
                state = .string(start: start, delimiter: delimiter, bytes: bytes, escape: next)
            } else {
                state = .idle
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw error(at: start, "string is not valid UTF-8")
                }
                try emit(SXPNode(.string(text), at: start))
            }
        }
    }

    /// The first byte of a token, in the idle state.
    private mutating func begin(_ byte: UInt8, at here: SXPLocation) throws(SXPError) {
        switch byte {
        case _ where Self.isSpace(byte):
            break
        case UInt8(ascii: "#"):
            state = .comment
        case UInt8(ascii: "("):
            guard open.count < maximumDepth else {
                throw error(at: here, "lists nested deeper than \(maximumDepth)")
            }
            open.append(OpenList(location: here))
        case UInt8(ascii: ")"):
            guard let list = open.popLast() else {
                throw error(at: here, "')' without a matching '('")
            }
            try emit(SXPNode(.list(list.items), at: list.location))
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            state = .string(start: here, delimiter: byte, bytes: [], escape: .none)
        default:
            try checkAtomByte(byte, at: here)
            state = .atom(start: here, bytes: [byte])
        }
    }

    /// One byte inside a string; returns the escape state to continue with,
    /// or nil when the closing quote ended the string.
    private func stringByte(
        _ byte: UInt8, at here: SXPLocation, escape: Escape, into bytes: inout [UInt8],
        _ delimiter: UInt8
    ) throws(SXPError) -> Escape? {
        switch escape {
        case .none:
            if byte == delimiter { return nil }
            if byte == UInt8(ascii: "\\") { return .pending(here) }
            bytes.append(byte)
            return Escape.none
        case .pending(let at):
            if let simple = Self.simpleEscapes[byte] {
                bytes.append(simple)
                return Escape.none
            }
            if byte == UInt8(ascii: "x") { return .hex(at, value: 0, digits: 0) }
            if let digit = Self.octalDigit(byte) { return .octal(at, value: digit, digits: 1) }
            // xend keeps an unknown escape as written.
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(byte)
            return Escape.none
        case .hex(let at, let value, let digits):
            if let digit = Self.hexDigit(byte) {
                let value = value * 16 + digit
                if digits + 1 == 2 {
                    bytes.append(UInt8(value))
                    return Escape.none
                }
                return .hex(at, value: value, digits: digits + 1)
            }
            guard digits > 0 else { throw error(at: at, "'\\x' must be followed by hex digits") }
            bytes.append(UInt8(value))
            return try stringByte(byte, at: here, escape: .none, into: &bytes, delimiter)
        case .octal(let at, let value, let digits):
            if let digit = Self.octalDigit(byte) {
                let value = value * 8 + digit
                guard value <= 0xff else {
                    throw error(at: at, "octal escape is larger than \\377")
                }
                if digits + 1 == 3 {
                    bytes.append(UInt8(value))
                    return Escape.none
                }
                return .octal(at, value: value, digits: digits + 1)
            }
            bytes.append(UInt8(value))
            return try stringByte(byte, at: here, escape: .none, into: &bytes, delimiter)
        }
    }

    private mutating func emit(_ node: SXPNode) throws(SXPError) {
        if open.isEmpty {
            done.append(node)
        } else {
            open[open.count - 1].items.append(node)
        }
    }

    private func atom(_ bytes: [UInt8], at start: SXPLocation) throws(SXPError) -> SXPNode {
        // checkAtomByte admitted printable ASCII only.
        let text = String(decoding: bytes, as: UTF8.self)
        switch Self.numberKind(bytes) {
        case .integer:
            guard let number = Int64(text) else {
                throw error(at: start, "integer \(text) is out of range")
            }
            return SXPNode(.integer(number), at: start)
        case .decimal:
            guard let number = Double(text), number.isFinite else {
                throw error(at: start, "number \(text) is out of range")
            }
            return SXPNode(.decimal(number), at: start)
        case .none:
            return SXPNode(.symbol(text), at: start)
        }
    }

    private func checkAtomByte(_ byte: UInt8, at here: SXPLocation) throws(SXPError) {
        if byte >= 0x80 {
            throw error(at: here, "byte 0x\(hex(byte)) outside a string: quote non-ASCII text")
        }
        if byte < 0x20 || byte == 0x7f {
            throw error(at: here, "control character 0x\(hex(byte)) outside a string")
        }
    }

    private func error(at location: SXPLocation, _ message: String) -> SXPError {
        SXPError(file: file, location: location, message: message)
    }

    // MARK: character classes

    private static let simpleEscapes: [UInt8: UInt8] = [
        UInt8(ascii: "a"): 0x07, UInt8(ascii: "b"): 0x08, UInt8(ascii: "t"): 0x09,
        UInt8(ascii: "n"): 0x0a, UInt8(ascii: "v"): 0x0b, UInt8(ascii: "f"): 0x0c,
        UInt8(ascii: "r"): 0x0d, UInt8(ascii: "\\"): UInt8(ascii: "\\"),
        UInt8(ascii: "'"): UInt8(ascii: "'"), UInt8(ascii: "\""): UInt8(ascii: "\""),
    ]

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0d).contains(byte)
    }

    private static func endsAtom(_ byte: UInt8) -> Bool {
        isSpace(byte) || byte == UInt8(ascii: "(") || byte == UInt8(ascii: ")")
            || byte == UInt8(ascii: "#")
    }

    private static func octalDigit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
        default: return nil
        }
    }

    private enum NumberKind { case integer, decimal }

    /// Whether a bare word reads as a number rather than a symbol.
    static func isNumber(_ word: some Collection<UInt8>) -> Bool {
        numberKind(Array(word)) != nil
    }

    /// `[+-]?digits` is an integer, `[+-]?digits.digits([eE][+-]?digits)?`
    /// a decimal; anything else (`1.2.3.4`, `eth0`, `-`) is a symbol.
    private static func numberKind(_ bytes: [UInt8]) -> NumberKind? {
        var index = 0
        func digits() -> Int {
            let start = index
            while index < bytes.count,
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index])
            {
                index += 1
            }
            return index - start
        }
        func sign() {
            if index < bytes.count,
                bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")
            {
                index += 1
            }
        }
        sign()
        guard digits() > 0 else { return nil }
        if index == bytes.count { return .integer }
        guard bytes[index] == UInt8(ascii: ".") else { return nil }
        index += 1
        guard digits() > 0 else { return nil }
        if index < bytes.count,
            bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")
        {
            index += 1
            sign()
            guard digits() > 0 else { return nil }
        }
        return index == bytes.count ? .decimal : nil
    }
}

func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xf)]])
}
