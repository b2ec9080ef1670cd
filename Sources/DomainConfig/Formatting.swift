/// Python 2 `format % arguments` for the conversions configs use:
/// `%s %r %d %i %u %x %X %o %c %%` with flags `-+ #0`, width and precision.
/// Mapping keys (`%(name)s`), `*` widths and floating-point conversions are
/// rejected with a message instead of being guessed at.
enum PercentFormat {
    struct Failure: Error {
        var message: String
    }

    static func format(_ format: String, _ argument: ConfigValue) throws(Failure) -> String {
        let arguments: [ConfigValue]
        if case .tuple(let items) = argument {
            arguments = items.map(\.value)
        } else {
            arguments = [argument]
        }
        var next = 0
        var out: [UInt8] = []
        let bytes = Array(format.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            guard byte == UInt8(ascii: "%") else {
                out.append(byte)
                continue
            }
            let specStart = index - 1
            var leftAlign = false
            var plusSign = false
            var spaceSign = false
            var alternate = false
            var zeroPad = false
            flags: while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "-"): leftAlign = true
                case UInt8(ascii: "+"): plusSign = true
                case UInt8(ascii: " "): spaceSign = true
                case UInt8(ascii: "#"): alternate = true
                case UInt8(ascii: "0"): zeroPad = true
                case UInt8(ascii: "("):
                    throw Failure(
                        message: "format mapping keys like %(name)s are not supported")
                default: break flags
                }
                index += 1
            }
            func number() -> Int? {
                var value: Int?
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"),
                    bytes[index] <= UInt8(ascii: "9")
                {
                    value = min((value ?? 0) * 10 + Int(bytes[index] - UInt8(ascii: "0")), 100_000)
                    index += 1
                }
                return value
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "*") {
                throw Failure(message: "'*' field widths are not supported")
            }
            let width = number() ?? 0
            var precision: Int?
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "*") {
                    throw Failure(message: "'*' precisions are not supported")
                }
                precision = number() ?? 0
            }
            // Length modifiers are accepted and ignored, as Python does.
            while index < bytes.count,
                [UInt8(ascii: "h"), UInt8(ascii: "l"), UInt8(ascii: "L")].contains(bytes[index])
            {
                index += 1
            }
            guard index < bytes.count else {
                throw Failure(message: "incomplete format at the end of '\(format)'")
            }
            let conversion = bytes[index]
            index += 1
            if conversion == UInt8(ascii: "%") {
                out.append(conversion)
                continue
            }
            guard next < arguments.count else {
                throw Failure(message: "not enough arguments for format string")
            }
            let value = arguments[next]
            next += 1
            var body: [UInt8]
            var prefix: [UInt8] = []
            var numeric = false
            switch conversion {
            case UInt8(ascii: "s"), UInt8(ascii: "r"):
                let text = conversion == UInt8(ascii: "s") ? value.pythonStr : value.pythonRepr
                body = Array(text.utf8)
                if let precision, body.count > precision { body = Array(body.prefix(precision)) }
            case UInt8(ascii: "d"), UInt8(ascii: "i"), UInt8(ascii: "u"), UInt8(ascii: "x"),
                UInt8(ascii: "X"), UInt8(ascii: "o"):
                guard case .integer(let integer) = value else {
                    throw Failure(
                        message: "%\(Character(Unicode.Scalar(conversion))) format: a number "
                            + "is required, not \(value.typeName) (\(value.pythonRepr))")
                }
                numeric = true
                let magnitude = integer.magnitude
                var digits: String
                switch conversion {
                case UInt8(ascii: "x"): digits = String(magnitude, radix: 16)
                case UInt8(ascii: "X"): digits = String(magnitude, radix: 16, uppercase: true)
                case UInt8(ascii: "o"): digits = String(magnitude, radix: 8)
                default: digits = String(magnitude)
                }
                if let precision, digits.count < precision {
                    digits = String(repeating: "0", count: precision - digits.count) + digits
                }
                if integer < 0 {
                    prefix = [UInt8(ascii: "-")]
                } else if plusSign {
                    prefix = [UInt8(ascii: "+")]
                } else if spaceSign {
                    prefix = [UInt8(ascii: " ")]
                }
                if alternate {
                    switch conversion {
                    case UInt8(ascii: "x"): prefix += Array("0x".utf8)
                    case UInt8(ascii: "X"): prefix += Array("0X".utf8)
                    case UInt8(ascii: "o") where !digits.hasPrefix("0"):
                        prefix += [UInt8(ascii: "0")]
                    default: break
                    }
                }
                body = Array(digits.utf8)
            case UInt8(ascii: "c"):
                switch value {
                case .integer(let code) where (0...0x10FFFF).contains(code):
                    guard let scalar = Unicode.Scalar(UInt32(code)) else {
                        throw Failure(message: "%c: \(code) is not a character")
                    }
                    body = Array(String(Character(scalar)).utf8)
                case .string(let text) where text.count == 1:
                    body = Array(text.utf8)
                default:
                    throw Failure(message: "%c requires an integer or a single character")
                }
            case UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "f"), UInt8(ascii: "F"),
                UInt8(ascii: "g"), UInt8(ascii: "G"):
                throw Failure(message: "floating-point formats are not supported")
            default:
                let shown =
                    conversion >= 0x20 && conversion < 0x7F
                    ? String(Character(Unicode.Scalar(conversion))) : "?"
                throw Failure(
                    message: "unsupported format character '\(shown)' (0x"
                        + "\(String(conversion, radix: 16))) at index \(specStart + 1)")
            }
            let length = prefix.count + body.count
            if width > length {
                let fill = width - length
                if leftAlign {
                    out += prefix + body + Array(repeating: UInt8(ascii: " "), count: fill)
                } else if zeroPad && numeric {
                    out += prefix + Array(repeating: UInt8(ascii: "0"), count: fill) + body
                } else {
                    out += Array(repeating: UInt8(ascii: " "), count: fill) + prefix + body
                }
            } else {
                out += prefix + body
            }
        }
        if next < arguments.count {
            throw Failure(message: "not all arguments converted during string formatting")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
