import SXP

/// A value of the config language: the Python types xm configs use.
enum ConfigValue: Equatable {
    case integer(Int)
    case string(String)
    case list([ConfigItem])
    case tuple([ConfigItem])
    case none

    /// Python's type name, for error messages an admin recognises.
    var typeName: String {
        switch self {
        case .integer: return "int"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .none: return "NoneType"
        }
    }

    /// Python truthiness: xm skips settings whose value is false.
    var isTruthy: Bool {
        switch self {
        case .integer(let value): return value != 0
        case .string(let value): return !value.isEmpty
        case .list(let items), .tuple(let items): return !items.isEmpty
        case .none: return false
        }
    }

    /// Python 2 `str()`.
    var pythonStr: String {
        if case .string(let text) = self { return text }
        return pythonRepr
    }

    /// Python 2 `repr()`.
    var pythonRepr: String {
        switch self {
        case .integer(let value): return String(value)
        case .string(let text): return pythonStringRepr(text)
        case .none: return "None"
        case .list(let items):
            return "[" + items.map(\.value.pythonRepr).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].value.pythonRepr + ",)" }
            return "(" + items.map(\.value.pythonRepr).joined(separator: ", ") + ")"
        }
    }
}

/// An element of a list or tuple, remembering where it was written so a
/// bad `disk` or `vif` entry is reported at its own line.
struct ConfigItem: Equatable {
    var value: ConfigValue
    var location: SourceLocation?

    static func == (left: ConfigItem, right: ConfigItem) -> Bool {
        left.value == right.value
    }
}

/// Python 2 `repr()` of a byte string: single quotes unless the text holds a
/// single quote and no double quote; non-printable bytes as `\xNN`.
func pythonStringRepr(_ text: String) -> String {
    SXPWriter.python.quote(text)
}

/// Python's `int()` on a decimal string: optional sign, surrounding spaces.
func parseDecimal(_ text: String) -> Int? {
    var trimmed = Substring(text).trimmingSpaces()
    if trimmed.first == "+" { trimmed = trimmed.dropFirst() }
    guard !trimmed.isEmpty,
        trimmed.dropFirst(trimmed.first == "-" ? 1 : 0).allSatisfy({
            $0.isASCII && $0.isNumber
        })
    else { return nil }
    return Int(trimmed)
}

extension Substring {
    /// Python's `str.strip()`.
    func trimmingSpaces() -> Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}

extension String {
    /// Python's `str.strip()`.
    func trimmingSpaces() -> String {
        String(Substring(self).trimmingSpaces())
    }
}
