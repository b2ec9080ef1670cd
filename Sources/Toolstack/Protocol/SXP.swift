import DomainConfig

/// S-expressions as xend's socket and save files carry them: lists,
/// integers and atoms (strings). The value type is DomainConfig's
/// `DomainSXP`; this adds a lossless text form and its parser.
///
/// The text form: `(` items `)`, a decimal integer, a bare atom (letters,
/// digits and `.-_:/~@+,=`, not all digits), or a double-quoted atom with
/// `\\`, `\"`, `\n`, `\t`, `\r` and `\xHH` escapes. The parser also reads
/// single-quoted atoms as xend's `sxp.show` wrote them.
public enum SXP {
    /// Deepest nesting the parser accepts; real messages use four levels.
    public static let maximumDepth = 32

    /// The lossless one-line text of a value.
    public static func render(_ value: DomainSXP) -> String {
        var out: [UInt8] = []
        render(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func render(_ value: DomainSXP, into out: inout [UInt8]) {
        switch value {
        case .integer(let number):
            out += Array(String(number).utf8)
        case .atom(let text):
            if isBare(text) {
                out += Array(text.utf8)
            } else {
                quote(text, into: &out)
            }
        case .list(let items):
            out.append(UInt8(ascii: "("))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: " ")) }
                render(item, into: &out)
            }
            out.append(UInt8(ascii: ")"))
        }
    }

    static let bareSymbols = Set(".-_:/~@+,=".utf8)

    /// Whether an atom can be written without quotes and read back as the
    /// same atom (not empty, not an integer's spelling).
    static func isBare(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, integerValue(bytes[...]) == nil else { return false }
        if bytes.first == UInt8(ascii: "-"), bytes.count > 1,
            bytes.dropFirst().allSatisfy(isDigit)
        {
            return false
        }
        return bytes.allSatisfy { byte in
            isDigit(byte) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
                || bareSymbols.contains(byte)
        }
    }

    private static func quote(_ text: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0x0A: out += Array("\\n".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x20..<0x7F: out.append(byte)
            default:
                out += [
                    UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(byte >> 4)], hex[Int(byte & 15)],
                ]
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Parses exactly one value (surrounding white space allowed).
    public static func parse(_ text: String) throws(ToolstackError) -> DomainSXP {
        try parse(Array(text.utf8))
    }

    /// Parses exactly one value from bytes.
    public static func parse(_ bytes: [UInt8]) throws(ToolstackError) -> DomainSXP {
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else {
            throw .malformedMessage("unexpected text after the expression at byte \(parser.index)")
        }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                index += 1
            }
        }

        mutating func value(depth: Int) throws(ToolstackError) -> DomainSXP {
            guard index < bytes.count else {
                throw .malformedMessage("the expression ends too early")
            }
            switch bytes[index] {
            case UInt8(ascii: "("):
                guard depth < SXP.maximumDepth else {
                    throw .malformedMessage("lists nested deeper than \(SXP.maximumDepth)")
                }
                index += 1
                var items: [DomainSXP] = []
                while true {
                    skipSpace()
                    guard index < bytes.count else {
                        throw .malformedMessage("a list is not closed")
                    }
                    if bytes[index] == UInt8(ascii: ")") {
                        index += 1
                        return .list(items)
                    }
                    items.append(try value(depth: depth + 1))
                }
            case UInt8(ascii: ")"):
                throw .malformedMessage("unbalanced ')' at byte \(index)")
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                return .atom(try quoted())
            default:
                let start = index
                while index < bytes.count, !isDelimiter(bytes[index]) { index += 1 }
                let token = bytes[start..<index]
                if let number = integerValue(token) { return .integer(number) }
                return .atom(String(decoding: token, as: UTF8.self))
            }
        }

        func isDelimiter(_ byte: UInt8) -> Bool {
            [
                0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\""),
                UInt8(ascii: "'"),
            ].contains(byte)
        }

        mutating func quoted() throws(ToolstackError) -> String {
            let quote = bytes[index]
            index += 1
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == quote { return String(decoding: out, as: UTF8.self) }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "x"):
                    guard index + 2 <= bytes.count,
                        let value = UInt8(
                            String(decoding: bytes[index..<index + 2], as: UTF8.self), radix: 16)
                    else {
                        throw .malformedMessage("bad \\x escape at byte \(index)")
                    }
                    out.append(value)
                    index += 2
                default:
                    out.append(escape)
                }
            }
            throw .malformedMessage("a quoted string is not closed")
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// `-?[0-9]+` that fits an Int.
    static func integerValue(_ token: ArraySlice<UInt8>) -> Int? {
        var digits = token
        if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy(isDigit) else { return nil }
        return Int(String(decoding: token, as: UTF8.self))
    }
}

extension DomainSXP {
    /// The head atom of a list (`create` in `(create ...)`).
    public var head: String? {
        guard case .list(let items) = self, let first = items.first, case .atom(let name) = first
        else { return nil }
        return name
    }

    /// The list's items after the head.
    public var tail: [DomainSXP] {
        guard case .list(let items) = self else { return [] }
        return Array(items.dropFirst())
    }

    /// An atom's text, or an integer's spelling.
    public var stringValue: String? {
        switch self {
        case .atom(let text): return text
        case .integer(let number): return String(number)
        case .list: return nil
        }
    }

    /// An integer, or an atom spelling one.
    public var intValue: Int? {
        switch self {
        case .integer(let number): return number
        case .atom(let text): return SXP.integerValue(Array(text.utf8)[...])
        case .list: return nil
        }
    }

    /// Every `(key ...)` child list with this head.
    public func children(_ key: String) -> [DomainSXP] {
        tail.filter { $0.head == key }
    }

    /// The first `(key value)` child's value.
    public func field(_ key: String) -> DomainSXP? {
        children(key).first?.tail.first
    }
}

/// Builds `(key value)`.
func sxpField(_ key: String, _ value: DomainSXP) -> DomainSXP {
    .list([.atom(key), value])
}

/// Builds `(key "text")`.
func sxpField(_ key: String, _ text: String) -> DomainSXP {
    .list([.atom(key), .atom(text)])
}

/// Builds `(key number)`.
func sxpField(_ key: String, _ number: Int) -> DomainSXP {
    .list([.atom(key), .integer(number)])
}
