/// Renders S-expressions as text. Lists, numbers and quoting work the same
/// in every style; the style decides which symbols print bare and how the
/// bytes of a quoted string are spelled. Symbols and strings quoted by the
/// `config` and `wire` styles read back unchanged through ``SXPParser``.
public struct SXPWriter: Sendable {
    /// Where the text goes, which fixes its quoting rules.
    public enum Style: Sendable {
        /// xend-config.sxp and netconf's records: a symbol prints bare
        /// unless it holds a space, a control character, non-ASCII, one of
        /// `( ) # " ' \` or would read back as a number; strings are
        /// double-quoted and keep their UTF-8.
        case config
        /// xend's socket and save files: bare only for letters, digits and
        /// `.-_:/~@+,=` that do not read back as a number, so that any peer
        /// splits the text the same way; strings are double-quoted, every
        /// byte outside printable ASCII as `\xHH`.
        case wire
        /// What xm printed with xend's `sxp.show`: bare for letters, digits
        /// and `.-_:/~` (even when that reads as a number, and for the empty
        /// atom), and for a lone `@`; others quoted by Python's `repr`.
        case python
    }

    public let style: Style

    public init(style: Style) {
        self.style = style
    }

    /// ``Style/config``.
    public static let config = SXPWriter(style: .config)
    /// ``Style/wire``.
    public static let wire = SXPWriter(style: .wire)
    /// ``Style/python``.
    public static let python = SXPWriter(style: .python)

    /// One expression on one line.
    public func render(_ node: SXPNode) -> String {
        render(node.value)
    }

    /// One value on one line.
    public func render(_ value: SXPNode.Value) -> String {
        switch value {
        case .list(let items):
            return "(" + items.map { render($0.value) }.joined(separator: " ") + ")"
        case .symbol(let text):
            return isBare(text) ? text : quote(text)
        case .string(let text):
            return quote(text)
        case .integer(let number):
            return String(number)
        case .decimal(let number):
            return String(number)
        }
    }

    /// Pretty-printed like xend's `PrettyPrint.prettyprint` (an Oppen-style
    /// printer): a list that fits on the rest of the line is printed flat;
    /// otherwise its head follows the parenthesis, every other element
    /// starts a new line indented 4 past the parenthesis, and the closing
    /// parenthesis gets its own line under the opening one. Ends with a
    /// newline, as `print` did.
    public func prettyPrinted(_ value: SXPNode.Value, width: Int = 80) -> String {
        var out = ""
        prettyPrint(value, column: 0, width: width, into: &out)
        return out + "\n"
    }

    private func prettyPrint(
        _ value: SXPNode.Value, column: Int, width: Int, into out: inout String
    ) {
        let flat = render(value)
        guard case .list(let items) = value, column + flat.utf8.count > width else {
            out += flat
            return
        }
        out += "("
        for (index, item) in items.enumerated() {
            if index == 0 {
                prettyPrint(item.value, column: column + 1, width: width, into: &out)
            } else {
                out += "\n" + String(repeating: " ", count: column + 4)
                prettyPrint(item.value, column: column + 4, width: width, into: &out)
            }
        }
        out += "\n" + String(repeating: " ", count: column) + ")"
    }

    /// A quoted string literal. `config` and `wire` use double quotes;
    /// `python` single quotes unless the text holds a single quote and no
    /// double quote, as `repr` chose. The quote and backslash are escaped,
    /// tab, newline and carriage return by name, other bytes outside
    /// printable ASCII as `\xHH` (`config` keeps UTF-8 above 0x7f).
    public func quote(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var delimiter = UInt8(ascii: "\"")
        if style == .python,
            !(bytes.contains(UInt8(ascii: "'")) && !bytes.contains(UInt8(ascii: "\"")))
        {
            delimiter = UInt8(ascii: "'")
        }
        var out: [UInt8] = [delimiter]
        for byte in bytes {
            switch byte {
            case delimiter, UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0x09: out += Array("\\t".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x20..<0x7F: out.append(byte)
            case 0x80... where style == .config: out.append(byte)
            default: out += Array("\\x\(hex(byte))".utf8)
            }
        }
        out.append(delimiter)
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether a symbol prints without quotes in this style.
    func isBare(_ text: String) -> Bool {
        let bytes = text.utf8
        switch style {
        case .config:
            return !bytes.isEmpty && !SXPParser.isNumber(bytes)
                && bytes.allSatisfy { byte in
                    byte > 0x20 && byte < 0x7f && !Self.configSpecials.contains(byte)
                }
        case .wire:
            return !bytes.isEmpty && !SXPParser.isNumber(bytes)
                && bytes.allSatisfy { Self.isAlphanumeric($0) || Self.wireSymbols.contains($0) }
        case .python:
            return text == "@"
                || bytes.allSatisfy { Self.isAlphanumeric($0) || Self.pythonSymbols.contains($0) }
        }
    }

    private static let configSpecials = Set("()#\"'\\".utf8)
    private static let wireSymbols = Set(".-_:/~@+,=".utf8)
    private static let pythonSymbols = Set(".-_:/~".utf8)

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }
}
