/// A domain's UUID: the hypervisor's 16-byte domain handle and the
/// `/vm/UUID` path in xenstore.
public struct DomainUUID: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// 16 bytes; nil otherwise.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// The canonical `8-4-4-4-12` hex form, either case.
    public init?(parsing text: String) {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12] else { return nil }
        let hex = Array(groups.joined().utf8)
        var bytes: [UInt8] = []
        var index = 0
        while index < hex.count {
            guard let high = Self.nibble(hex[index]), let low = Self.nibble(hex[index + 1]) else {
                return nil
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        self.bytes = bytes
    }

    /// A random (version 4) UUID.
    public static func random(using generator: inout some RandomNumberGenerator) -> DomainUUID {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return DomainUUID(unchecked: bytes)
    }

    /// A random UUID from the system generator.
    public static func random() -> DomainUUID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    private init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// True for the all-zero handle Xen gives domains nobody named.
    public var isNil: Bool { bytes.allSatisfy { $0 == 0 } }

    public var description: String {
        let hex = bytes.map { byte -> String in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
        let characters = Array(hex)
        var out = ""
        for (index, character) in characters.enumerated() {
            if [8, 12, 16, 20].contains(index) { out += "-" }
            out.append(character)
        }
        return out
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
