import XenBus

/// `NETTXF_*`: flags of a transmit request (io/netif.h).
public struct NetTxFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The protocol checksum is blank (to be filled by offload).
    public static let checksumBlank = NetTxFlags(rawValue: 1 << 0)
    /// The data was validated against its protocol checksum.
    public static let dataValidated = NetTxFlags(rawValue: 1 << 1)
    /// The packet continues in the next request.
    public static let moreData = NetTxFlags(rawValue: 1 << 2)
    /// Extra-info descriptors follow this (first) request.
    public static let extraInfo = NetTxFlags(rawValue: 1 << 3)
}

/// `NETRXF_*`: flags of a receive response.
public struct NetRxFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let dataValidated = NetRxFlags(rawValue: 1 << 0)
    public static let checksumBlank = NetRxFlags(rawValue: 1 << 1)
    public static let moreData = NetRxFlags(rawValue: 1 << 2)
    public static let extraInfo = NetRxFlags(rawValue: 1 << 3)
}

/// `NETIF_RSP_*`.
public enum NetifStatus: Int16, Sendable {
    case dropped = -2
    case error = -1
    case okay = 0
    /// The response to an extra-info slot.
    case null = 1
}

/// `struct netif_tx_request`: 12 bytes, `gref, offset, flags, id, size`.
/// An extra-info slot is a request slot read as ``NetExtraInfo`` instead.
public struct NetTxRequest: RingDecodable, RingEncodable, Sendable, Equatable {
    public static let wireSize = 12
    public static let wireAlignment = 4

    public var gref: GrantRef
    public var offset: UInt16
    public var flags: NetTxFlags
    public var id: UInt16
    /// In a packet's first slot the whole packet's length; else this
    /// slot's bytes.
    public var size: UInt16
    public init(gref: GrantRef, offset: UInt16, flags: NetTxFlags, id: UInt16, size: UInt16) {
        self.gref = gref
        self.offset = offset
        self.flags = flags
        self.id = id
        self.size = size
    }

    /// An extra-info slot, as a frontend writes it (for tests).
    public init(extraInfo: NetExtraInfo) {
        let b = extraInfo.bytes.map(UInt32.init)
        gref = GrantRef(b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24)
        offset = UInt16(b[4] | b[5] << 8)
        flags = NetTxFlags(rawValue: UInt16(b[6] | b[7] << 8))
        id = 0
        size = 0
    }

    public init(ringEntry entry: RingEntryReader) {
        gref = GrantRef(entry.load(UInt32.self, at: 0))
        offset = entry.load(at: 4)
        flags = NetTxFlags(rawValue: entry.load(at: 6))
        id = entry.load(at: 8)
        size = entry.load(at: 10)
    }

    /// The slot's first 8 bytes read as an extra-info descriptor (what an
    /// extra slot holds; little-endian like the fields they overlay).
    public var asExtraInfo: NetExtraInfo {
        let g = gref.rawValue
        return NetExtraInfo(bytes: [
            UInt8(g & 0xFF), UInt8(g >> 8 & 0xFF), UInt8(g >> 16 & 0xFF), UInt8(g >> 24),
            UInt8(offset & 0xFF), UInt8(offset >> 8),
            UInt8(flags.rawValue & 0xFF), UInt8(flags.rawValue >> 8),
        ])
    }

    public func encode(to entry: inout RingEntryWriter) {
        entry.store(gref.rawValue, at: 0)
        entry.store(offset, at: 4)
        entry.store(flags.rawValue, at: 6)
        entry.store(id, at: 8)
        entry.store(size, at: 10)
    }
}

/// `struct netif_tx_response`: 4 bytes, `id, status`.
public struct NetTxResponse: RingDecodable, RingEncodable, Sendable, Equatable {
    public static let wireSize = 4
    public static let wireAlignment = 2

    public var id: UInt16
    public var status: Int16

    public init(id: UInt16, status: NetifStatus) {
        self.id = id
        self.status = status.rawValue
    }

    public init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        status = entry.load(at: 2)
    }

    public func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(status, at: 2)
    }
}

/// `struct netif_rx_request`: 8 bytes, `id, pad, gref`: a page the guest
/// offers for a received packet.
public struct NetRxRequest: RingDecodable, RingEncodable, Sendable, Equatable {
    public static let wireSize = 8
    public static let wireAlignment = 4

    public var id: UInt16
    public var gref: GrantRef

    public init(id: UInt16, gref: GrantRef) {
        self.id = id
        self.gref = gref
    }

    public init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        gref = GrantRef(entry.load(UInt32.self, at: 4))
    }

    public func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(gref.rawValue, at: 4)
    }
}

/// `struct netif_rx_response`: 8 bytes, `id, offset, flags, status`
/// (`status` > 0 is the byte count in the slot). An extra-info response
/// is the same slot written as ``NetExtraInfo``.
public struct NetRxResponse: RingDecodable, RingEncodable, Sendable, Equatable {
    public static let wireSize = 8
    public static let wireAlignment = 2

    public var id: UInt16
    public var offset: UInt16
    public var flags: NetRxFlags
    public var status: Int16
    /// Set when the slot carries an extra-info descriptor instead.
    public var extraInfo: NetExtraInfo?

    public init(id: UInt16, offset: UInt16, flags: NetRxFlags, status: Int16) {
        self.id = id
        self.offset = offset
        self.flags = flags
        self.status = status
        self.extraInfo = nil
    }

    /// A response slot holding an extra-info descriptor.
    public init(extraInfo: NetExtraInfo) {
        self.id = 0
        self.offset = 0
        self.flags = []
        self.status = 0
        self.extraInfo = extraInfo
    }

    public init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        offset = entry.load(at: 2)
        flags = NetRxFlags(rawValue: entry.load(at: 4))
        status = entry.load(at: 6)
        extraInfo = nil
    }

    public func encode(to entry: inout RingEntryWriter) {
        if let extraInfo {
            entry.store(bytes: extraInfo.bytes, at: 0)
            return
        }
        entry.store(id, at: 0)
        entry.store(offset, at: 2)
        entry.store(flags.rawValue, at: 4)
        entry.store(status, at: 6)
    }
}

/// `struct netif_extra_info` (8 bytes): `type, flags`, then by type GSO
/// (`size, type, pad, features`), a multicast address, or a hash.
public struct NetExtraInfo: Sendable, Equatable {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    public enum Kind: UInt8, Sendable {
        case gso = 1
        case multicastAdd = 2
        case multicastDelete = 3
        case hash = 4
    }

    /// `XEN_NETIF_GSO_TYPE_*`.
    public enum GSOType: UInt8, Sendable {
        case none = 0
        case tcpv4 = 1
        case tcpv6 = 2
    }

    /// The raw descriptor.
    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = Array(bytes.prefix(8)) + [UInt8](repeating: 0, count: max(0, 8 - bytes.count))
    }

    /// A GSO descriptor: segments of at most `segmentSize` bytes.
    public static func gso(segmentSize: UInt16, type: GSOType, more: Bool = false) -> NetExtraInfo {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes[0] = Kind.gso.rawValue
        bytes[1] = more ? 1 : 0
        bytes[2] = UInt8(segmentSize & 0xFF)
        bytes[3] = UInt8(segmentSize >> 8)
        bytes[4] = type.rawValue
        return NetExtraInfo(bytes: bytes)
    }

    /// The type byte as written (any value: guests write garbage too).
    public var rawKind: UInt8 { bytes[0] }
    public var kind: Kind? { Kind(rawValue: bytes[0]) }
    /// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra follows.
    public var hasMore: Bool { bytes[1] & 1 != 0 }
    /// GSO: the segment size (MSS).
    public var gsoSegmentSize: UInt16 { UInt16(bytes[2]) | UInt16(bytes[3]) << 8 }
    /// GSO: the type byte as written.
    public var rawGSOType: UInt8 { bytes[4] }
}
