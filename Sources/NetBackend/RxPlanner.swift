import XenBus

/// How one received packet lands in the buffers a guest posted on its RX
/// ring: which bytes go into which granted page (grant copies from our
/// packet buffer), and the responses, in ring order.
public struct RxPlan: Sendable, Equatable {
    /// `length` bytes at `packetOffset` of the packet into page `gref` at
    /// offset 0.
    public struct Copy: Sendable, Equatable {
        public var packetOffset: Int
        public var gref: GrantRef
        public var length: UInt16

        public init(packetOffset: Int, gref: GrantRef, length: UInt16) {
            self.packetOffset = packetOffset
            self.gref = gref
            self.length = length
        }
    }

    public var copies: [Copy]
    public var responses: [NetRxResponse]
    /// RX requests the packet uses (data slots, and one for the GSO extra).
    public var requestsUsed: Int
}

/// Plans received packets into posted RX buffers the way netfront reads
/// them: the first slot with `moreData` when more follow, `extraInfo` when
/// a GSO descriptor follows in the next slot (which uses up one posted
/// request, as netfront recycles the buffer at that ring index), each
/// slot filled from offset 0 up to a page, status = its byte count.
public enum RxPlanner {
    /// The largest packet netback passes to a guest (a 64 KiB GSO packet and
    /// its Ethernet header).
    public static let maximumLength = 65_535 + 14

    /// Posted requests a packet of `length` bytes needs.
    public static func requestsNeeded(length: Int, segmented: Bool) -> Int {
        max(1, (length + xenPageSize - 1) / xenPageSize) + (segmented ? 1 : 0)
    }

    /// The plan for a packet of `length` bytes over `requests` (the posted
    /// buffers in ring order), or nil when fewer are posted than it needs
    /// (wait for the guest to post more). `length` must be 1 up to
    /// ``maximumLength``.
    public static func plan(
        length: Int, checksum: NetRxFlags, segmentation: TxPacket.Segmentation?,
        requests: ArraySlice<NetRxRequest>
    ) -> RxPlan? {
        precondition(length > 0 && length <= maximumLength, "packet length \(length)")
        let needed = requestsNeeded(length: length, segmented: segmentation != nil)
        guard requests.count >= needed else { return nil }
        var copies: [RxPlan.Copy] = []
        var responses: [NetRxResponse] = []
        var request = requests.startIndex
        var offset = 0
        while offset < length {
            let chunk = min(xenPageSize, length - offset)
            let slot = requests[request]
            request += 1
            copies.append(RxPlan.Copy(packetOffset: offset, gref: slot.gref, length: UInt16(chunk)))
            var flags: NetRxFlags = []
            if offset + chunk < length { flags.insert(.moreData) }
            if offset == 0 {
                flags.formUnion(checksum.intersection([.checksumBlank, .dataValidated]))
                if segmentation != nil { flags.insert(.extraInfo) }
            }
            responses.append(
                NetRxResponse(id: slot.id, offset: 0, flags: flags, status: Int16(chunk)))
            if offset == 0, let segmentation {
                // The descriptor takes the next slot and its posted buffer.
                request += 1
                responses.append(
                    NetRxResponse(
                        extraInfo: .gso(
                            segmentSize: segmentation.segmentSize, type: segmentation.type)))
            }
            offset += chunk
        }
        return RxPlan(copies: copies, responses: responses, requestsUsed: needed)
    }
}
