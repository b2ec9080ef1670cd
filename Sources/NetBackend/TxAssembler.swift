import XenBus

/// One packet a guest transmitted, validated: the granted pieces that hold
/// its bytes in order, its offload metadata, and the responses its slots
/// take once it is sent.
public struct TxPacket: Sendable, Equatable {
    /// Bytes of the packet in one guest page.
    public struct Piece: Sendable, Equatable {
        public var gref: GrantRef
        public var offset: UInt16
        public var length: UInt16

        public init(gref: GrantRef, offset: UInt16, length: UInt16) {
            self.gref = gref
            self.offset = offset
            self.length = length
        }
    }

    /// GSO metadata from the GSO extra-info slot.
    public struct Segmentation: Sendable, Equatable {
        public var type: NetExtraInfo.GSOType
        public var segmentSize: UInt16

        public init(type: NetExtraInfo.GSOType, segmentSize: UInt16) {
            self.type = type
            self.segmentSize = segmentSize
        }
    }

    public var pieces: [Piece]
    /// The packet's length (the first slot's `size`).
    public var length: Int
    /// Checksum offload state: `checksumBlank`, `dataValidated`.
    public var checksum: NetTxFlags
    public var segmentation: Segmentation?
    /// The ids of the data slots in ring order, first slot first; one
    /// response each, with `extraCount` null responses after the first.
    public var ids: [UInt16]
    /// Extra-info slots after the first slot (each takes a null response).
    public var extraCount: Int

    /// The responses the packet's slots take, in ring order.
    public func responses(_ status: NetifStatus) -> [NetTxResponse] {
        txResponses(ids: ids, extraCount: extraCount, status: status)
    }
}

/// A packet refused: every slot it took still gets its response.
public struct TxDrop: Sendable, Equatable {
    public var reason: String
    public var ids: [UInt16]
    public var extraCount: Int

    /// Error responses for every slot, in ring order.
    public var responses: [NetTxResponse] {
        txResponses(ids: ids, extraCount: extraCount, status: .error)
    }
}

/// What ``TxAssembler/add(_:)`` produced.
public enum TxAssembly: Sendable, Equatable {
    case packet(TxPacket)
    case dropped(TxDrop)
    /// The slots cannot be a packet any more (more_data never ends): the
    /// ring cannot be resynchronised, so the vif disconnects.
    case fatal(String)
}

func txResponses(ids: [UInt16], extraCount: Int, status: NetifStatus) -> [NetTxResponse] {
    var out: [NetTxResponse] = []
    for (index, id) in ids.enumerated() {
        out.append(NetTxResponse(id: id, status: status))
        if index == 0 {
            for _ in 0..<extraCount { out.append(NetTxResponse(id: 0, status: .null)) }
        }
    }
    if ids.isEmpty {
        for _ in 0..<extraCount { out.append(NetTxResponse(id: 0, status: .null)) }
    }
    return out
}

/// Gathers transmit slots into packets, as netfront lays them out: the
/// first slot (its `size` is the whole packet's), then its extra-info
/// slots if `extraInfo` is set (each with `hasMore` but the last), then the
/// data slots while `moreData` is set. Pure: it sees private copies of the
/// slots (taken off the ring once) and decides; it never touches guest
/// memory.
///
/// Against a hostile guest every rule is checked and a packet that breaks
/// one is dropped (error responses for all its slots, the vif goes on):
/// at most ``maxDataSlots`` data slots, no slot crossing its page, no slot
/// larger than what remains of the packet, at least an Ethernet header, at
/// most one extra of each known type, GSO of a known type with a segment
/// size. Only a packet whose slots run past ``fatalSlots`` is fatal: its
/// end cannot be found.
public struct TxAssembler: Sendable {
    /// Data slots a packet may use (`XEN_NETIF_NR_SLOTS_MIN`, what netback
    /// promises every frontend).
    public static let maxDataSlots = 18
    /// Slots after which a packet without an end disconnects the vif.
    public static let fatalSlots = 64
    /// The shortest packet: an Ethernet header.
    public static let minimumLength = 14

    private struct Partial {
        var first: NetTxRequest
        var extrasPending: Bool
        var extraCount = 0
        var kinds: Set<UInt8> = []
        var segmentation: TxPacket.Segmentation?
        var pieces: [TxPacket.Piece] = []
        var ids: [UInt16] = []
        var remaining: Int
        var dropReason: String?
        var slots = 1
    }

    private var partial: Partial?

    public init() {}

    /// Whether a packet is half gathered (its remaining slots not yet seen).
    public var isGathering: Bool { partial != nil }

    /// Takes the next slot off the ring; returns a result when a packet
    /// ends.
    public mutating func add(_ request: NetTxRequest) -> TxAssembly? {
        guard var packet = partial else {
            return start(request)
        }
        packet.slots += 1
        if packet.slots > Self.fatalSlots {
            partial = nil
            return .fatal("a packet's slots run past \(Self.fatalSlots) without an end")
        }
        if packet.extrasPending {
            addExtra(request.asExtraInfo, to: &packet)
            if packet.extrasPending || packet.first.flags.contains(.moreData) {
                partial = packet
                return nil
            }
            return finish(packet)
        }
        addData(request, to: &packet)
        if request.flags.contains(.moreData) {
            partial = packet
            return nil
        }
        return finish(packet)
    }

    private mutating func start(_ first: NetTxRequest) -> TxAssembly? {
        var packet = Partial(
            first: first, extrasPending: first.flags.contains(.extraInfo),
            remaining: Int(first.size))
        packet.ids.append(first.id)
        if Int(first.size) < Self.minimumLength {
            packet.dropReason = "packet of \(first.size) bytes is shorter than an Ethernet header"
        }
        if packet.extrasPending || first.flags.contains(.moreData) {
            partial = packet
            return nil
        }
        return finish(packet)
    }

    private func addExtra(_ extra: NetExtraInfo, to packet: inout Partial) {
        packet.extraCount += 1
        packet.extrasPending = extra.hasMore
        guard packet.dropReason == nil else { return }
        guard let kind = extra.kind else {
            packet.dropReason = "unknown extra-info type \(extra.rawKind)"
            return
        }
        guard packet.kinds.insert(extra.rawKind).inserted else {
            packet.dropReason = "extra-info type \(extra.rawKind) given twice"
            return
        }
        if kind == .gso {
            guard let type = NetExtraInfo.GSOType(rawValue: extra.rawGSOType), type != .none else {
                packet.dropReason = "unknown GSO type \(extra.rawGSOType)"
                return
            }
            guard extra.gsoSegmentSize > 0 else {
                packet.dropReason = "GSO segment size 0"
                return
            }
            packet.segmentation = TxPacket.Segmentation(
                type: type, segmentSize: extra.gsoSegmentSize)
        }
    }

    private func addData(_ request: NetTxRequest, to packet: inout Partial) {
        packet.ids.append(request.id)
        guard packet.dropReason == nil else { return }
        if packet.ids.count > Self.maxDataSlots {
            packet.dropReason = "packet uses more than \(Self.maxDataSlots) slots"
            return
        }
        if Int(request.offset) + Int(request.size) > xenPageSize {
            packet.dropReason =
                "slot of \(request.size) bytes at offset \(request.offset) crosses its page"
            return
        }
        if Int(request.size) > packet.remaining {
            packet.dropReason =
                "slot of \(request.size) bytes is larger than the \(packet.remaining) left of the packet"
            return
        }
        packet.remaining -= Int(request.size)
        packet.pieces.append(
            TxPacket.Piece(gref: request.gref, offset: request.offset, length: request.size))
    }

    private mutating func finish(_ packet: Partial) -> TxAssembly {
        partial = nil
        if let reason = packet.dropReason {
            return .dropped(TxDrop(reason: reason, ids: packet.ids, extraCount: packet.extraCount))
        }
        // The first slot holds what the others do not.
        let firstLength = packet.remaining
        if Int(packet.first.offset) + firstLength > xenPageSize {
            return .dropped(
                TxDrop(
                    reason:
                        "first slot of \(firstLength) bytes at offset \(packet.first.offset) "
                        + "crosses its page",
                    ids: packet.ids, extraCount: packet.extraCount))
        }
        let first = TxPacket.Piece(
            gref: packet.first.gref, offset: packet.first.offset, length: UInt16(firstLength))
        return .packet(
            TxPacket(
                pieces: [first] + packet.pieces, length: Int(packet.first.size),
                checksum: packet.first.flags.intersection([.checksumBlank, .dataValidated]),
                segmentation: packet.segmentation, ids: packet.ids,
                extraCount: packet.extraCount))
    }
}
