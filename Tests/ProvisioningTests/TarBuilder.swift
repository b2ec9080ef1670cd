/// Builds tar archives byte by byte for the tests, hostile ones included:
/// each header field can be set to anything, and the checksum is computed
/// (or deliberately wrong).
struct TarBuilder {
    var bytes: [UInt8] = []

    struct Header {
        var name: String
        var type: UInt8 = UInt8(ascii: "0")
        var mode = "0000644"
        var sizeField: String? = nil
        var link = ""
        var prefix = ""
        var checksumDelta = 0
    }

    static func field(_ text: String, _ length: Int) -> [UInt8] {
        var bytes = Array(text.utf8.prefix(length))
        bytes += [UInt8](repeating: 0, count: length - bytes.count)
        return bytes
    }

    static func octal(_ value: Int, _ length: Int) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, length - 1 - digits.count)) + digits
    }

    static func header(_ h: Header, size: Int) -> [UInt8] {
        var block = field(h.name, 100)
        block += field(h.mode, 8)
        block += field("0000000", 8)  // uid
        block += field("0000000", 8)  // gid
        block += field(h.sizeField ?? octal(size, 12), 12)
        block += field(octal(0o14_000_000_000, 12), 12)  // mtime
        block += [UInt8](repeating: 0x20, count: 8)  // checksum, as spaces while summing
        block.append(h.type)
        block += field(h.link, 100)
        block += Array("ustar\u{0}00".utf8)  // magic and version
        block += field("root", 32) + field("root", 32)
        block += field("", 8) + field("", 8)  // device numbers
        block += field(h.prefix, 155)
        block += [UInt8](repeating: 0, count: 12)
        let sum = block.reduce(0) { $0 + Int($1) } + h.checksumDelta
        let checksum = Array(octal(sum, 7).utf8) + [0, 0x20]  // six digits, NUL, space
        block.replaceSubrange(148..<156, with: checksum)
        return block
    }

    mutating func add(_ h: Header, data: [UInt8] = []) {
        bytes += Self.header(h, size: data.count)
        bytes += data
        let padding = (512 - data.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: padding)
    }

    mutating func file(_ name: String, _ text: String) {
        add(Header(name: name), data: Array(text.utf8))
    }

    mutating func directory(_ name: String) {
        add(Header(name: name, type: UInt8(ascii: "5"), mode: "0000755"))
    }

    /// Two zero blocks, as tar writes at the end.
    func finished() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}
