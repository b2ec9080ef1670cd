/// An IPv4 or IPv6 address in network byte order.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4([UInt8])
    case v6([UInt8])

    /// Parses dotted-quad IPv4 or RFC 4291 text IPv6 (with `::` and an
    /// optional trailing dotted quad).
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let bytes = Self.parseV6(Substring(text)) else { return nil }
            self = .v6(bytes)
        } else {
            guard let bytes = Self.parseV4(Substring(text)) else { return nil }
            self = .v4(bytes)
        }
    }

    /// Builds an address from raw bytes: 4 for IPv4, 16 for IPv6.
    public init?(bytes: [UInt8]) {
        switch bytes.count {
        case 4: self = .v4(bytes)
        case 16: self = .v6(bytes)
        default: return nil
        }
    }

    /// The all-zero address of a family (the destination of a default route).
    public static func unspecified(v6: Bool) -> IPAddress {
        v6 ? .v6([UInt8](repeating: 0, count: 16)) : .v4([0, 0, 0, 0])
    }

    public var bytes: [UInt8] {
        switch self {
        case .v4(let bytes), .v6(let bytes): return bytes
        }
    }

    public var isV6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The largest prefix length of the family.
    public var bitWidth: Int { isV6 ? 128 : 32 }

    /// The address with every bit after `prefixLength` cleared.
    public func masked(to prefixLength: Int) -> IPAddress {
        var bytes = self.bytes
        for index in bytes.indices {
            let bitsBefore = index * 8
            if bitsBefore >= prefixLength {
                bytes[index] = 0
            } else if prefixLength - bitsBefore < 8 {
                bytes[index] &= UInt8(0xff) << (8 - (prefixLength - bitsBefore))
            }
        }
        return isV6 ? .v6(bytes) : .v4(bytes)
    }

    public var description: String {
        switch self {
        case .v4(let bytes):
            return bytes.map { String($0) }.joined(separator: ".")
        case .v6(let bytes):
            var groups: [Int] = []
            for index in stride(from: 0, to: 16, by: 2) {
                groups.append(Int(bytes[index]) << 8 | Int(bytes[index + 1]))
            }
            // RFC 5952: compress the longest run (of two or more) of zero groups.
            var bestStart = -1
            var bestLength = 0
            var index = 0
            while index < 8 {
                if groups[index] == 0 {
                    var end = index
                    while end < 8, groups[end] == 0 { end += 1 }
                    if end - index > bestLength {
                        bestStart = index
                        bestLength = end - index
                    }
                    index = end
                } else {
                    index += 1
                }
            }
            func text(_ slice: ArraySlice<Int>) -> String {
                slice.map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestLength < 2 { return text(groups[...]) }
            return text(groups[..<bestStart]) + "::" + text(groups[(bestStart + bestLength)...])
        }
    }

    private static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = UInt8(part)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func parseV6(_ text: Substring) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var bytes: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowV4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseV4(piece) else { return nil }
                    bytes += v4
                    continue
                }
                guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else {
                    return nil
                }
                bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
            }
            return bytes
        }
        if halves.count == 1 {
            guard let bytes = groups(text, allowV4Tail: true), bytes.count == 16 else { return nil }
            return bytes
        }
        guard let head = groups(Substring(halves[0]), allowV4Tail: false),
            let tail = groups(Substring(halves[1]), allowV4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

extension StringProtocol {
    /// Splits on a multi-character separator (Foundation-free).
    fileprivate func components(separatedBy separator: String) -> [Substring] {
        var result: [Substring] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            result.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        result.append(rest)
        return result
    }
}

/// An address with a prefix length: `10.0.0.5/24`, `2001:db8::/64`.
public struct IPPrefix: Sendable, Hashable, CustomStringConvertible {
    public var address: IPAddress
    public var length: Int

    public init(_ address: IPAddress, length: Int) {
        self.address = address
        self.length = length
    }

    /// Parses `ADDRESS[/LENGTH]`; without a length the prefix is a single
    /// host (/32 or /128).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        var length = address.bitWidth
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(parts[1]),
                value <= address.bitWidth
            else { return nil }
            length = value
        }
        self.init(address, length: length)
    }

    /// Whether the prefix covers exactly one address.
    public var isHost: Bool { length == address.bitWidth }

    /// The network: the address with its host bits cleared.
    public var network: IPPrefix { IPPrefix(address.masked(to: length), length: length) }

    /// `ADDRESS/LENGTH`, or only the address for a single host.
    public var description: String { isHost ? address.description : "\(address)/\(length)" }

    /// `ADDRESS/LENGTH` always.
    public var cidr: String { "\(address)/\(length)" }
}
