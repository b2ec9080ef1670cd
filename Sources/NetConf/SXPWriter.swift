/// Renders S-expressions so that ``SXPParser`` reads them back unchanged.
public enum SXPWriter {
    /// One expression on one line.
    public static func render(_ node: SXPNode) -> String {
        render(node.value)
    }

    /// One value on one line.
    public static func render(_ value: SXPNode.Value) -> String {
        switch value {
        case .list(let items):
            return "(" + items.map { render($0.value) }.joined(separator: " ") + ")"
        case .symbol(let text):
            return isBareSymbol(text) ? text : quote(text)
        case .string(let text):
            return quote(text)
        case .integer(let number):
            return String(number)
        case .decimal(let number):
            return String(number)
        }
    }

    /// A double-quoted string literal with escapes for quote, backslash and
    /// control characters.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                out += "\\x" + hex(UInt8(scalar.value))
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Whether a symbol can be written without quotes and read back as the
    /// same symbol (not a number, not split, not a comment).
    static func isBareSymbol(_ text: String) -> Bool {
        guard !text.isEmpty else { return false }
        for byte in text.utf8 {
            if byte <= 0x20 || byte >= 0x7f { return false }
            if byte == UInt8(ascii: "(") || byte == UInt8(ascii: ")") || byte == UInt8(ascii: "#")
                || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")
                || byte == UInt8(ascii: "\\")
            {
                return false
            }
        }
        guard let parsed = try? SXPParser.parse(text, file: ""), parsed.count == 1,
            case .symbol(let back) = parsed[0].value
        else { return false }
        return back == text
    }
}
