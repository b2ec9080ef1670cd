import DataPath
import NetBackend
import SystemPackage
import TapDevice
import XenBus

/// What a queue may hand the guest, from the frontend's features.
public struct VifGuestFeatures: Sendable, Equatable {
    /// `feature-sg`: RX packets may span several slots.
    public var scatterGather: Bool
    /// `feature-gso-tcpv4` / `-tcpv6`: RX packets may carry a GSO descriptor.
    public var gsoTCPv4: Bool
    public var gsoTCPv6: Bool
    /// Partial checksums may be passed (not `feature-no-csum-offload`, and
    /// `feature-ipv6-csum-offload` so IPv6 is covered too).
    public var checksumOffload: Bool

    public init(scatterGather: Bool, gsoTCPv4: Bool, gsoTCPv6: Bool, checksumOffload: Bool) {
        self.scatterGather = scatterGather
        self.gsoTCPv4 = gsoTCPv4
        self.gsoTCPv6 = gsoTCPv6
        self.checksumOffload = checksumOffload
    }

    /// What the TAP may give us: exactly what the guest takes, so the
    /// kernel segments and checksums the rest itself.
    public var tapOffloads: TapDevice.Offloads {
        guard checksumOffload else { return [] }
        var offloads: TapDevice.Offloads = [.checksum]
        if scatterGather && gsoTCPv4 { offloads.insert(.tcpv4) }
        if scatterGather && gsoTCPv6 { offloads.insert(.tcpv6) }
        return offloads
    }
}

/// One queue of a vif: its TX ring (guest → TAP), its RX ring (TAP →
/// guest) and its TAP queue descriptor, served on one data-path worker.
///
/// TX: slots are gathered into packets (``TxAssembler``), the packets of a
/// round are grant-copied into a bounce buffer with one batch, each is
/// written to the TAP with its virtio header, and the responses go out
/// with one push. RX: the packets waiting on the TAP are read into an
/// arena, planned into the buffers the guest posted (``RxPlanner``),
/// copied with one batch and answered with one push.
///
/// A guest's malformed packet is dropped and counted; an impossible ring
/// state (a producer index the ring cannot hold, a packet without an end)
/// throws, which detaches this queue's endpoints and closes this vif only.
final class VifQueue {
    let name: String
    let domain: DomainID
    let grants: any GrantTable
    let tap: FileDescriptor
    let features: VifGuestFeatures
    let counters: VifCounters

    private var txRing: BackRing<NetTxRequest, NetTxResponse>
    private let txBinding: EventChannelBinding
    private var assembler = TxAssembler()
    private let txBounce: UnsafeMutableRawBufferPointer
    private let txBatch: GrantCopyBatch
    private var txPending: [TxPending] = []
    private var txBounceUsed = 0

    private var rxRing: BackRing<NetRxRequest, NetRxResponse>
    private let rxBinding: EventChannelBinding
    private let rxArena: UnsafeMutableRawBufferPointer
    private let rxHeader: UnsafeMutableRawBufferPointer
    private let rxBatch: GrantCopyBatch
    private var rxPlanned: [RxPlanned] = []
    private var rxArenaUsed = 0
    /// Buffers taken off the RX ring, not yet used, in ring order.
    private var posted: [NetRxRequest] = []
    private var postedUsed = 0

    private enum TxPending {
        case drop(TxDrop)
        case packet(TxPacket, bounceOffset: Int, firstSegment: Int)
    }

    private struct RxPlanned {
        var plan: RxPlan
        var firstSegment: Int
        var length: Int
    }

    /// Bounce space for TX: four largest packets per batch.
    static let txBounceSize = 4 * 65_536
    /// Segments per TX batch: four packets of the most slots.
    static let txBatchCapacity = 4 * TxAssembler.maxDataSlots
    /// The longest frame read from the TAP, plus one byte to notice longer.
    static let rxFrameSpace = RxPlanner.maximumLength + 1
    /// RX arena: four largest frames per batch.
    static let rxArenaSize = 4 * 69_632
    /// Segments per RX batch: four frames of up to 17 pages each.
    static let rxBatchCapacity = 4 * 17

    init(
        name: String, domain: DomainID, grants: any GrantTable, tap: FileDescriptor,
        features: VifGuestFeatures, counters: VifCounters,
        txRing: consuming BackRing<NetTxRequest, NetTxResponse>, txBinding: EventChannelBinding,
        rxRing: consuming BackRing<NetRxRequest, NetRxResponse>, rxBinding: EventChannelBinding
    ) {
        self.name = name
        self.domain = domain
        self.grants = grants
        self.tap = tap
        self.features = features
        self.counters = counters
        self.txRing = txRing
        self.txBinding = txBinding
        self.rxRing = rxRing
        self.rxBinding = rxBinding
        txBounce = .allocate(byteCount: Self.txBounceSize, alignment: xenPageSize)
        txBatch = grants.makeCopyBatch(capacity: Self.txBatchCapacity, local: txBounce)
        rxArena = .allocate(byteCount: Self.rxArenaSize, alignment: xenPageSize)
        rxHeader = .allocate(byteCount: VirtioNetHeader.size, alignment: 8)
        rxBatch = grants.makeCopyBatch(capacity: Self.rxBatchCapacity, local: rxArena)
        txPending.reserveCapacity(256)
        rxPlanned.reserveCapacity(64)
        posted.reserveCapacity(512)
    }

    deinit {
        txBounce.deallocate()
        rxArena.deallocate()
        rxHeader.deallocate()
    }

    // MARK: TX: guest → TAP

    /// Takes up to `budget` TX slots, sends the packets they complete, and
    /// answers them. True when slots are left.
    func serveTransmit(budget: Int) throws(XenBusError) -> Bool {
        var slots = 0
        while slots < budget, let request = try txRing.nextRequest() {
            slots += 1
            switch assembler.add(request) {
            case nil:
                continue
            case .fatal(let reason)?:
                throw .guestProtocol("\(name) TX ring: \(reason)")
            case .dropped(let drop)?:
                counters.txMalformed.add(1)
                txPending.append(.drop(drop))
            case .packet(let packet)?:
                if packet.length > Self.txBounceSize - txBounceUsed
                    || packet.pieces.count > txBatch.capacity - txBatch.count
                {
                    try flushTransmit()
                }
                let first = txBatch.count
                var offset = txBounceUsed
                for piece in packet.pieces {
                    txBatch.append(
                        GrantCopySegment(
                            .fromGuest, domain: domain, ref: piece.gref, offset: piece.offset,
                            length: piece.length, localOffset: offset))
                    offset += Int(piece.length)
                }
                txPending.append(.packet(packet, bounceOffset: txBounceUsed, firstSegment: first))
                txBounceUsed += packet.length
            }
        }
        try flushTransmit()
        if slots == budget { return true }
        return try txRing.finalCheckForRequests()
    }

    /// Copies the batch's packets out of the guest, writes them to the TAP
    /// and answers every slot taken, in ring order, with one push.
    private func flushTransmit() throws(XenBusError) {
        guard !txPending.isEmpty else { return }
        var copied = true
        if txBatch.count > 0 {
            do throws(XenBusError) {
                try grants.copy(txBatch)
            } catch {
                // The ioctl failed as a whole: nothing copied is trusted.
                copied = false
            }
        }
        for entry in txPending {
            switch entry {
            case .drop(let drop):
                for response in drop.responses { try txRing.enqueueResponse(response) }
            case .packet(let packet, let offset, let first):
                let status = sendCopied(packet, offset: offset, firstSegment: first, copied: copied)
                for response in packet.responses(status) { try txRing.enqueueResponse(response) }
            }
        }
        txPending.removeAll(keepingCapacity: true)
        txBatch.removeAll()
        txBounceUsed = 0
        if txRing.pushResponses() { try txBinding.notify() }
    }

    private func sendCopied(_ packet: TxPacket, offset: Int, firstSegment: Int, copied: Bool)
        -> NetifStatus
    {
        for index in firstSegment..<(firstSegment + packet.pieces.count)
        where !copied || !txBatch.status(at: index).isOkay {
            counters.txGrantErrors.add(1)
            return .error
        }
        // The bytes are in our bounce buffer now: the guest can no longer
        // change what the header is computed from.
        let frame = UnsafeMutableRawBufferPointer(
            rebasing: txBounce[offset..<(offset + packet.length)])
        let header: VirtioNetHeader
        switch OffloadTranslation.header(
            forTransmitted: frame, checksum: packet.checksum, segmentation: packet.segmentation)
        {
        case .success(let made): header = made
        case .failure:
            counters.txMalformed.add(1)
            return .error
        }
        var encoded: (UInt64, UInt16) = (0, 0)
        let written = withUnsafeMutableBytes(of: &encoded) { raw in
            header.encode(into: raw)
            return PacketIO.write(
                tap, header: UnsafeRawBufferPointer(rebasing: raw[0..<VirtioNetHeader.size]),
                frame: UnsafeRawBufferPointer(frame))
        }
        switch written {
        case .success(true):
            counters.txPackets.add(1)
            counters.txBytes.add(packet.length)
            if packet.segmentation != nil { counters.txGSOPackets.add(1) }
            return .okay
        case .success(false), .failure:
            // A full or downed TAP drops the packet, as a congested NIC would.
            counters.txTapDropped.add(1)
            return .dropped
        }
    }

    // MARK: RX: TAP → guest

    /// Reads up to `budget` packets from the TAP and passes them to the
    /// guest's posted buffers. True when the budget ran out (more may wait).
    func serveReceive(budget: Int) throws(XenBusError) -> Bool {
        var packets = 0
        while packets < budget {
            if Self.rxArenaSize - rxArenaUsed < Self.rxFrameSpace {
                try flushReceive()
            }
            let frame = UnsafeMutableRawBufferPointer(
                rebasing: rxArena[rxArenaUsed..<(rxArenaUsed + Self.rxFrameSpace)])
            let length: Int
            switch PacketIO.read(tap, header: rxHeader, frame: frame) {
            case .success(nil):
                try flushReceive()
                return false
            case .success(let read?):
                length = read
            case .failure(let errno):
                try flushReceive()
                throw .driver("\(name): reading its TAP failed: \(errno)")
            }
            packets += 1
            try place(length: length)
        }
        try flushReceive()
        return true
    }

    /// Plans the frame just read at the arena's end into posted buffers.
    private func place(length: Int) throws(XenBusError) {
        guard length > 0, length <= RxPlanner.maximumLength,
            let header = VirtioNetHeader(decoding: UnsafeRawBufferPointer(rxHeader))
        else {
            counters.rxUnsupported.add(1)
            return
        }
        let offload: ReceiveOffload
        switch OffloadTranslation.receive(header) {
        case .success(let translated): offload = translated
        case .failure:
            counters.rxUnsupported.add(1)
            return
        }
        if let segmentation = offload.segmentation {
            let allowed = segmentation.type == .tcpv4 ? features.gsoTCPv4 : features.gsoTCPv6
            guard allowed, features.scatterGather else {
                counters.rxUnsupported.add(1)
                return
            }
        }
        if !features.scatterGather, length > xenPageSize {
            counters.rxUnsupported.add(1)
            return
        }
        let needed = RxPlanner.requestsNeeded(
            length: length, segmented: offload.segmentation != nil)
        if needed > Self.rxBatchCapacity - rxBatch.count { try flushReceive() }
        while posted.count - postedUsed < needed, let request = try rxRing.nextRequest() {
            posted.append(request)
        }
        guard
            let plan = RxPlanner.plan(
                length: length, checksum: offload.checksum, segmentation: offload.segmentation,
                requests: posted[postedUsed...])
        else {
            // No buffers: dropped, as a NIC with an empty ring drops. The
            // buffers taken so far stay for the next packet.
            counters.rxNoBuffers.add(1)
            return
        }
        let first = rxBatch.count
        for copy in plan.copies {
            rxBatch.append(
                GrantCopySegment(
                    .toGuest, domain: domain, ref: copy.gref, offset: 0, length: copy.length,
                    localOffset: rxArenaUsed + copy.packetOffset))
        }
        rxPlanned.append(RxPlanned(plan: plan, firstSegment: first, length: length))
        postedUsed += plan.requestsUsed
        rxArenaUsed += length
    }

    /// Copies the planned packets into the guest's buffers and answers
    /// their requests, in ring order, with one push.
    private func flushReceive() throws(XenBusError) {
        guard !rxPlanned.isEmpty else { return }
        var copied = true
        if rxBatch.count > 0 {
            do throws(XenBusError) {
                try grants.copy(rxBatch)
            } catch {
                copied = false
            }
        }
        for planned in rxPlanned {
            var okay = copied
            for index in planned.firstSegment..<(planned.firstSegment + planned.plan.copies.count)
            where !rxBatch.status(at: index).isOkay {
                okay = false
            }
            if okay {
                counters.rxPackets.add(1)
                counters.rxBytes.add(planned.length)
                if planned.plan.requestsUsed > planned.plan.copies.count {
                    // A descriptor slot was used: the packet carries GSO.
                    counters.rxGSOPackets.add(1)
                }
            } else {
                counters.rxGrantErrors.add(1)
            }
            for var response in planned.plan.responses {
                // A failed copy answers each data slot with an error; the
                // GSO descriptor slot stays what it is.
                if !okay, response.extraInfo == nil {
                    response = NetRxResponse(
                        id: response.id, offset: 0, flags: [],
                        status: NetifStatus.error.rawValue)
                }
                try rxRing.enqueueResponse(response)
            }
        }
        posted.removeFirst(postedUsed)
        postedUsed = 0
        rxPlanned.removeAll(keepingCapacity: true)
        rxBatch.removeAll()
        rxArenaUsed = 0
        if rxRing.pushResponses() { try rxBinding.notify() }
    }

    /// Called when the guest posted RX buffers: nothing is waiting for
    /// them (packets without buffers were dropped), but a final check keeps
    /// the guest's notifications coming.
    func serveReceiveRing() throws(XenBusError) -> Bool {
        _ = try rxRing.finalCheckForRequests()
        return false
    }
}

/// The data-path endpoints of a queue: which part a wakeup serves.
final class VifEndpoint: DataPathEndpoint {
    enum Role {
        /// The TX ring's port (split event channels).
        case transmit
        /// The RX ring's port (split): the guest posted buffers.
        case receiveRing
        /// The one port of both rings (no split event channels).
        case bothRings
        /// The TAP queue's descriptor: packets for the guest.
        case tap
    }

    let queue: VifQueue
    let role: Role

    init(_ queue: VifQueue, _ role: Role) {
        self.queue = queue
        self.role = role
    }

    func serve(budget: Int) throws(XenBusError) -> Bool {
        switch role {
        case .transmit:
            return try queue.serveTransmit(budget: budget)
        case .receiveRing:
            return try queue.serveReceiveRing()
        case .bothRings:
            let more = try queue.serveTransmit(budget: budget)
            _ = try queue.serveReceiveRing()
            return more
        case .tap:
            return try queue.serveReceive(budget: budget)
        }
    }
}
