import Synchronization

/// Counters of one vif, shared by its queues' workers and read from any
/// thread (the service's reports, tests). Each counter is its own atomic:
/// a reader may see one packet counted in `txPackets` before its bytes.
public final class VifCounters: Sendable {
    /// A copy of every counter at one moment.
    public struct Snapshot: Sendable, Equatable, CustomStringConvertible {
        /// Packets the guest sent that reached the TAP, and their bytes.
        public var txPackets = 0
        public var txBytes = 0
        /// Of those, packets with a GSO descriptor (segmented by dom0's
        /// stack or a NIC, not by us).
        public var txGSOPackets = 0
        /// Guest packets dropped as malformed (slot rules, offload metadata
        /// that does not match the headers).
        public var txMalformed = 0
        /// Guest packets whose grants could not be copied (bad refs).
        public var txGrantErrors = 0
        /// Guest packets the TAP refused (down, full).
        public var txTapDropped = 0
        /// Packets passed to the guest, and their bytes.
        public var rxPackets = 0
        public var rxBytes = 0
        /// Of those, packets passed with a GSO descriptor.
        public var rxGSOPackets = 0
        /// Packets for the guest dropped because it had not posted enough
        /// buffers.
        public var rxNoBuffers = 0
        /// Packets for the guest dropped because it cannot take them (too
        /// long without scatter-gather, unsupported GSO, over-long frames).
        public var rxUnsupported = 0
        /// Packets whose copy into the guest's buffers failed (bad refs).
        public var rxGrantErrors = 0

        public init() {}

        public var description: String {
            "tx \(txPackets) packets \(txBytes) bytes \(txGSOPackets) gso, dropped \(txMalformed) malformed "
                + "\(txGrantErrors) grant errors \(txTapDropped) TAP; "
                + "rx \(rxPackets) packets \(rxBytes) bytes \(rxGSOPackets) gso, dropped \(rxNoBuffers) no buffers "
                + "\(rxUnsupported) unsupported \(rxGrantErrors) grant errors"
        }
    }

    let txPackets = Atomic<Int>(0)
    let txBytes = Atomic<Int>(0)
    let txGSOPackets = Atomic<Int>(0)
    let txMalformed = Atomic<Int>(0)
    let txGrantErrors = Atomic<Int>(0)
    let txTapDropped = Atomic<Int>(0)
    let rxPackets = Atomic<Int>(0)
    let rxBytes = Atomic<Int>(0)
    let rxGSOPackets = Atomic<Int>(0)
    let rxNoBuffers = Atomic<Int>(0)
    let rxUnsupported = Atomic<Int>(0)
    let rxGrantErrors = Atomic<Int>(0)

    public init() {}

    /// The counters now.
    public var snapshot: Snapshot {
        var out = Snapshot()
        out.txPackets = txPackets.load(ordering: .relaxed)
        out.txBytes = txBytes.load(ordering: .relaxed)
        out.txGSOPackets = txGSOPackets.load(ordering: .relaxed)
        out.txMalformed = txMalformed.load(ordering: .relaxed)
        out.txGrantErrors = txGrantErrors.load(ordering: .relaxed)
        out.txTapDropped = txTapDropped.load(ordering: .relaxed)
        out.rxPackets = rxPackets.load(ordering: .relaxed)
        out.rxBytes = rxBytes.load(ordering: .relaxed)
        out.rxGSOPackets = rxGSOPackets.load(ordering: .relaxed)
        out.rxNoBuffers = rxNoBuffers.load(ordering: .relaxed)
        out.rxUnsupported = rxUnsupported.load(ordering: .relaxed)
        out.rxGrantErrors = rxGrantErrors.load(ordering: .relaxed)
        return out
    }
}

extension Atomic where Value == Int {
    /// Adds `amount` (relaxed: counters order nothing).
    func add(_ amount: Int) {
        _ = wrappingAdd(amount, ordering: .relaxed)
    }
}
