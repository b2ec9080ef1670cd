/// `struct virtio_net_hdr` (linux/virtio_net.h, 10 bytes): the header a TAP
/// opened with `IFF_VNET_HDR` puts before every packet it hands out and
/// expects before every packet written to it. It carries what netif's
/// checksum flags and GSO extra carry, so offloads cross between a guest
/// and dom0's stack without software segmentation or checksumming.
///
/// Fields are little-endian: a TAP without `TUNSETVNETBE`/`TUNSETVNETLE`
/// uses the legacy virtio byte order, the host's, and dom0 is x86.
public struct VirtioNetHeader: Sendable, Equatable {
    /// The header's size as the TAP is told (`TUNSETVNETHDRSZ`).
    public static let size = 10

    /// `VIRTIO_NET_HDR_F_*`.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// The checksum at `checksumStart + checksumOffset` is to be filled
        /// in over the bytes from `checksumStart` (it holds the pseudo-header
        /// sum).
        public static let needsChecksum = Flags(rawValue: 1)
        /// The receiver may take the packet's checksum as verified.
        public static let dataValid = Flags(rawValue: 2)
    }

    /// `VIRTIO_NET_HDR_GSO_*` without the ECN bit.
    public enum GSOType: UInt8, Sendable {
        case none = 0
        case tcpv4 = 1
        case udp = 3
        case tcpv6 = 4
    }

    /// `VIRTIO_NET_HDR_GSO_ECN`: segments carry the CWR bit as the first did.
    public static let gsoECN: UInt8 = 0x80

    public var flags: Flags
    /// The GSO type byte as read (ECN bit included: unknown values stay visible).
    public var rawGSOType: UInt8
    /// Bytes of headers (a hint for the kernel's linear part).
    public var headerLength: UInt16
    /// The segment size (MSS) of a GSO packet.
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(
        flags: Flags = [], gsoType: GSOType = .none, headerLength: UInt16 = 0,
        gsoSize: UInt16 = 0, checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0
    ) {
        self.flags = flags
        self.rawGSOType = gsoType.rawValue
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// The GSO type, nil for a value this codec does not know (ECN set, or
    /// garbage).
    public var gsoType: GSOType? { GSOType(rawValue: rawGSOType) }

    /// Decodes the first ``size`` bytes; nil when fewer are given.
    public init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        flags = Flags(rawValue: bytes[0])
        rawGSOType = bytes[1]
        headerLength = u16(2)
        gsoSize = u16(4)
        checksumStart = u16(6)
        checksumOffset = u16(8)
    }

    /// Writes the header into the first ``size`` bytes of `bytes` (which
    /// must have room).
    public func encode(into bytes: UnsafeMutableRawBufferPointer) {
        guard bytes.count >= Self.size else { return }
        func put(_ value: UInt16, _ at: Int) {
            bytes[at] = UInt8(value & 0xFF)
            bytes[at + 1] = UInt8(value >> 8)
        }
        bytes[0] = flags.rawValue
        bytes[1] = rawGSOType
        put(headerLength, 2)
        put(gsoSize, 4)
        put(checksumStart, 6)
        put(checksumOffset, 8)
    }

    /// The header as bytes (tests, and callers without a buffer at hand).
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        out.withUnsafeMutableBytes { encode(into: $0) }
        return out
    }
}

/// Where a packet's transport checksum lives, found by reading its
/// Ethernet, optional VLAN, IPv4/IPv6 (with extension headers) and TCP/UDP
/// headers: what `skb_checksum_setup` works out in Linux netback, since
/// netif's `checksumBlank` does not say where the checksum is.
public struct ChecksumLocation: Sendable, Equatable {
    public enum Transport: Sendable, Equatable {
        case tcp
        case udp
    }

    /// Offset of the transport header (`csum_start`).
    public var start: Int
    /// Offset of the checksum field from `start` (`csum_offset`): 16 for
    /// TCP, 6 for UDP.
    public var offset: Int
    public var transport: Transport
    /// Whether the network layer is IPv6.
    public var isIPv6: Bool
    /// Bytes up to the end of the transport header (TCP: with options).
    public var headersLength: Int
    /// Offset of the IP header (after Ethernet and VLAN tags).
    public var networkStart: Int

    public init(
        start: Int, offset: Int, transport: Transport, isIPv6: Bool, headersLength: Int,
        networkStart: Int = 14
    ) {
        self.networkStart = networkStart
        self.start = start
        self.offset = offset
        self.transport = transport
        self.isIPv6 = isIPv6
        self.headersLength = headersLength
    }

    /// Reads the headers of `packet`; nil (with the reason) when they are
    /// cut short, fragmented, or neither TCP nor UDP over IP.
    public static func find(in packet: UnsafeRawBufferPointer) -> Result<
        ChecksumLocation, ChecksumLocationError
    > {
        func u16(_ at: Int) -> Int { Int(packet[at]) << 8 | Int(packet[at + 1]) }
        var l3 = 14
        guard packet.count >= l3 else { return .failure(.truncated("Ethernet header")) }
        var etherType = u16(12)
        // One or two VLAN tags (802.1Q, 802.1ad) before the real type.
        var tags = 0
        while etherType == 0x8100 || etherType == 0x88A8 {
            tags += 1
            guard tags <= 2, packet.count >= l3 + 4 else {
                return .failure(.truncated("VLAN tag"))
            }
            etherType = u16(l3 + 2)
            l3 += 4
        }
        var protocolNumber: UInt8
        var l4: Int
        var isIPv6 = false
        switch etherType {
        case 0x0800:
            guard packet.count >= l3 + 20 else { return .failure(.truncated("IPv4 header")) }
            let ihl = Int(packet[l3] & 0x0F) * 4
            guard packet[l3] >> 4 == 4, ihl >= 20, packet.count >= l3 + ihl else {
                return .failure(.malformed("IPv4 header length"))
            }
            // More-fragments or a fragment offset: no whole transport header.
            if u16(l3 + 6) & 0x3FFF != 0 { return .failure(.fragmented) }
            protocolNumber = packet[l3 + 9]
            l4 = l3 + ihl
        case 0x86DD:
            isIPv6 = true
            guard packet.count >= l3 + 40 else { return .failure(.truncated("IPv6 header")) }
            protocolNumber = packet[l3 + 6]
            l4 = l3 + 40
            // Hop-by-hop, routing and destination options may come first.
            var hops = 0
            while protocolNumber == 0 || protocolNumber == 43 || protocolNumber == 60 {
                hops += 1
                guard hops <= 8, packet.count >= l4 + 8 else {
                    return .failure(.truncated("IPv6 extension header"))
                }
                protocolNumber = packet[l4]
                l4 += (Int(packet[l4 + 1]) + 1) * 8
            }
            if protocolNumber == 44 { return .failure(.fragmented) }
        default:
            return .failure(.unsupported("EtherType 0x\(String(etherType, radix: 16))"))
        }
        switch protocolNumber {
        case 6:
            guard packet.count >= l4 + 20 else { return .failure(.truncated("TCP header")) }
            let length = Int(packet[l4 + 12] >> 4) * 4
            guard length >= 20, packet.count >= l4 + length else {
                return .failure(.malformed("TCP header length"))
            }
            return .success(
                ChecksumLocation(
                    start: l4, offset: 16, transport: .tcp, isIPv6: isIPv6,
                    headersLength: l4 + length, networkStart: l3))
        case 17:
            guard packet.count >= l4 + 8 else { return .failure(.truncated("UDP header")) }
            return .success(
                ChecksumLocation(
                    start: l4, offset: 6, transport: .udp, isIPv6: isIPv6, headersLength: l4 + 8,
                    networkStart: l3))
        default:
            return .failure(.unsupported("IP protocol \(protocolNumber)"))
        }
    }
}

/// Why ``ChecksumLocation/find(in:)`` found no checksum to offload.
public enum ChecksumLocationError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(String)
    case malformed(String)
    case fragmented
    case unsupported(String)

    public var description: String {
        switch self {
        case .truncated(let what): return "packet ends inside its \(what)"
        case .malformed(let what): return "bad \(what)"
        case .fragmented: return "an IP fragment cannot have its checksum offloaded"
        case .unsupported(let what): return "checksum offload of \(what) is not supported"
        }
    }
}

/// Converts offload metadata between netif (the guest's side) and the
/// virtio header (the TAP's side).
public enum OffloadTranslation {
    /// The virtio header for a packet a guest transmitted, whose first bytes
    /// (at least its headers, in private memory) are `packet`. A packet with
    /// a blank checksum or GSO gets `needsChecksum` at its transport header;
    /// one the guest validated gets `dataValid`. GSO without a blank
    /// checksum (Linux netfront never sends it, Windows frontends may) is
    /// made partial as Linux netback does: the pseudo-header sum is written
    /// into the checksum field, in `packet` (private memory). Fails with the
    /// reason to drop it: a checksum the headers cannot place, or a GSO type
    /// that does not match the headers.
    public static func header(
        forTransmitted packet: UnsafeMutableRawBufferPointer, checksum: NetTxFlags,
        segmentation: TxPacket.Segmentation?
    ) -> Result<VirtioNetHeader, OffloadError> {
        guard checksum.contains(.checksumBlank) || segmentation != nil else {
            return .success(
                VirtioNetHeader(flags: checksum.contains(.dataValidated) ? [.dataValid] : []))
        }
        let location: ChecksumLocation
        switch ChecksumLocation.find(in: UnsafeRawBufferPointer(packet)) {
        case .success(let found): location = found
        case .failure(let reason): return .failure(.checksum(reason))
        }
        if !checksum.contains(.checksumBlank) {
            writePseudoHeaderSum(into: packet, at: location)
        }
        var header = VirtioNetHeader(
            flags: [.needsChecksum], checksumStart: UInt16(location.start),
            checksumOffset: UInt16(location.offset))
        if let segmentation {
            let expected: NetExtraInfo.GSOType = location.isIPv6 ? .tcpv6 : .tcpv4
            guard location.transport == .tcp, segmentation.type == expected else {
                return .failure(.gsoMismatch(segmentation.type))
            }
            header.rawGSOType =
                (segmentation.type == .tcpv6 ? VirtioNetHeader.GSOType.tcpv6 : .tcpv4).rawValue
            header.gsoSize = segmentation.segmentSize
            header.headerLength = UInt16(location.headersLength)
        }
        return .success(header)
    }

    /// Writes the folded pseudo-header sum (addresses, protocol, transport
    /// length) into the checksum field at `location`: what a partial
    /// checksum holds there for the stack to complete (`csum_tcpudp_magic`
    /// / `csum_ipv6_magic`, uncomplemented).
    public static func writePseudoHeaderSum(
        into packet: UnsafeMutableRawBufferPointer, at location: ChecksumLocation
    ) {
        let field = location.start + location.offset
        guard field + 2 <= packet.count else { return }
        var sum: UInt32 = 0
        func add(_ from: Int, _ count: Int) {
            var index = from
            while index + 1 < from + count {
                sum += UInt32(packet[index]) << 8 | UInt32(packet[index + 1])
                index += 2
            }
        }
        let length = UInt32(packet.count - location.start)
        let protocolNumber: UInt32 = location.transport == .tcp ? 6 : 17
        if location.isIPv6 {
            add(location.networkStart + 8, 32)  // source and destination
            sum += (length >> 16) + (length & 0xFFFF) + protocolNumber
        } else {
            add(location.networkStart + 12, 8)  // source and destination
            sum += protocolNumber + length
        }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        packet[field] = UInt8(sum >> 8)
        packet[field + 1] = UInt8(sum & 0xFF)
    }

    /// What a packet read from the TAP tells the guest: its RX checksum
    /// flags and GSO descriptor. `checksumBlank` goes with `dataValidated`,
    /// as Linux netback sets them for a partial checksum. Fails for GSO a
    /// netif guest cannot take (UDP, ECN, unknown types; the TAP's offload
    /// settings keep them away, so this is a defence only).
    public static func receive(_ header: VirtioNetHeader) -> Result<ReceiveOffload, OffloadError> {
        var flags: NetRxFlags = []
        if header.flags.contains(.needsChecksum) {
            flags = [.checksumBlank, .dataValidated]
        } else if header.flags.contains(.dataValid) {
            flags = [.dataValidated]
        }
        switch header.gsoType {
        case .none?:
            return .success(ReceiveOffload(checksum: flags, segmentation: nil))
        case .tcpv4?, .tcpv6?:
            guard header.gsoSize > 0, header.flags.contains(.needsChecksum) else {
                return .failure(.unsupportedReceiveGSO(header.rawGSOType))
            }
            let type: NetExtraInfo.GSOType = header.gsoType == .tcpv4 ? .tcpv4 : .tcpv6
            return .success(
                ReceiveOffload(
                    checksum: flags,
                    segmentation: TxPacket.Segmentation(type: type, segmentSize: header.gsoSize)))
        case .udp?, nil:
            return .failure(.unsupportedReceiveGSO(header.rawGSOType))
        }
    }
}

/// A received packet's offload metadata as netif carries it.
public struct ReceiveOffload: Sendable, Equatable {
    /// The first RX response's checksum flags.
    public var checksum: NetRxFlags
    /// The GSO descriptor to pass on, if the packet is to be segmented.
    public var segmentation: TxPacket.Segmentation?

    public init(checksum: NetRxFlags, segmentation: TxPacket.Segmentation?) {
        self.checksum = checksum
        self.segmentation = segmentation
    }
}

/// Why a packet's offload metadata could not be translated (the packet is
/// dropped and counted).
public enum OffloadError: Error, Sendable, Equatable, CustomStringConvertible {
    case checksum(ChecksumLocationError)
    case gsoMismatch(NetExtraInfo.GSOType)
    case unsupportedReceiveGSO(UInt8)

    public var description: String {
        switch self {
        case .checksum(let reason): return "blank checksum: \(reason)"
        case .gsoMismatch(let type): return "GSO type \(type) does not match the packet's headers"
        case .unsupportedReceiveGSO(let raw): return "GSO type \(raw) cannot be passed to a guest"
        }
    }
}
