import Synchronization

/// A per-ring record of requests taken off a back ring but not yet
/// answered, kept in memory that outlives the backend process (a shared
/// mapping of a file on tmpfs), so a restarted backend can redo or answer
/// what its predecessor had in flight.
///
/// Layout: a 64-byte header (magic, version, slot count, message sizes,
/// the connection's identity, `req_cons`), then one slot per ring entry,
/// indexed by the request's ring index modulo the ring size (at most a
/// ring's worth of requests is ever outstanding, so they never collide).
/// A slot holds its state, the request's index, the response's index and
/// the request and response bytes.
///
/// The order of stores makes every crash point recoverable: a request's
/// bytes are written before its slot says `taken`, and the slot before
/// `req_cons` moves past it; a response is written into the slot (state
/// `answered`, with the ring index it goes to) before it is put on the
/// ring, and the slot is freed only after the ring's `rsp_prod` has
/// published it. The request bytes in the slot are the backend's one
/// private copy of the guest's request.
public struct RingJournal {
    static let magic: UInt32 = 0x314A_5850  // "PXJ1"
    static let version: UInt32 = 1
    static let headerSize = 64
    static let slotHeaderSize = 16

    enum SlotState: UInt32 {
        case free = 0
        case taken = 1
        case answered = 2
    }

    /// Slots, one per ring entry (a power of two).
    public let slotCount: UInt32
    /// `sizeof` the request and response messages.
    public let requestSize: Int
    public let responseSize: Int
    /// What the journal belongs to (see ``identity(_:)``).
    public let identity: UInt64
    private let base: UnsafeMutableRawPointer
    private let slotStride: Int

    /// Bytes a journal for `slots` entries of these message sizes needs.
    public static func byteCount(slots: UInt32, requestSize: Int, responseSize: Int) -> Int {
        headerSize + Int(slots) * stride(requestSize: requestSize, responseSize: responseSize)
    }

    static func stride(requestSize: Int, responseSize: Int) -> Int {
        (slotHeaderSize + requestSize + responseSize + 7) & ~7
    }

    /// A stable 64-bit identity (FNV-1a) for a connection description such
    /// as `"vbd 1/51712 refs 8,9 port 17"`: a journal left by another
    /// connection (the frontend reconnected with new rings) is not trusted.
    public static func identity(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    private init(
        base: UnsafeMutableRawPointer, slots: UInt32, requestSize: Int, responseSize: Int,
        identity: UInt64
    ) {
        self.base = base
        self.slotCount = slots
        self.requestSize = requestSize
        self.responseSize = responseSize
        self.identity = identity
        self.slotStride = Self.stride(requestSize: requestSize, responseSize: responseSize)
    }

    private static func check(
        _ buffer: UnsafeMutableRawBufferPointer, slots: UInt32, requestSize: Int,
        responseSize: Int
    ) throws(XenBusError) -> UnsafeMutableRawPointer {
        guard slots > 0, slots & (slots - 1) == 0, requestSize > 0, responseSize > 0 else {
            throw .ringBufferInvalid(
                "journal of \(slots) slots, \(requestSize)/\(responseSize) bytes")
        }
        let needed = byteCount(slots: slots, requestSize: requestSize, responseSize: responseSize)
        guard let base = buffer.baseAddress, buffer.count >= needed,
            Int(bitPattern: base) % 8 == 0
        else {
            throw .ringBufferInvalid("journal needs \(needed) aligned bytes, has \(buffer.count)")
        }
        return base
    }

    /// Starts an empty journal in `buffer` (a fresh connection:
    /// `req_cons` 0, every slot free).
    public init(
        formatting buffer: UnsafeMutableRawBufferPointer, slots: UInt32, requestSize: Int,
        responseSize: Int, identity: UInt64, requestConsumer: UInt32 = 0
    ) throws(XenBusError) {
        let base = try Self.check(
            buffer, slots: slots, requestSize: requestSize, responseSize: responseSize)
        let used = Self.byteCount(
            slots: slots, requestSize: requestSize, responseSize: responseSize)
        UnsafeMutableRawBufferPointer(start: base, count: used)
            .initializeMemory(as: UInt8.self, repeating: 0)
        self.init(
            base: base, slots: slots, requestSize: requestSize, responseSize: responseSize,
            identity: identity)
        store32(UInt32(slots), at: 8)
        store32(UInt32(requestSize), at: 12)
        store32(UInt32(responseSize), at: 16)
        base.storeBytes(of: identity, toByteOffset: 24, as: UInt64.self)
        store32(requestConsumer, at: 32)
        store32(Self.version, at: 4)
        // The magic goes last: a journal interrupted while formatting is
        // never mistaken for a valid one.
        atomic(at: 0).pointee.store(Self.magic, ordering: .releasing)
    }

    /// Opens the journal a previous process left in `buffer`, or nil when
    /// there is none for this connection (no magic, another version,
    /// other sizes, another identity).
    public init?(
        recovering buffer: UnsafeMutableRawBufferPointer, slots: UInt32, requestSize: Int,
        responseSize: Int, identity: UInt64
    ) {
        guard
            let base = try? Self.check(
                buffer, slots: slots, requestSize: requestSize, responseSize: responseSize)
        else { return nil }
        self.init(
            base: base, slots: slots, requestSize: requestSize, responseSize: responseSize,
            identity: identity)
        guard atomic(at: 0).pointee.load(ordering: .acquiring) == Self.magic,
            load32(at: 4) == Self.version, load32(at: 8) == slots,
            load32(at: 12) == UInt32(requestSize), load32(at: 16) == UInt32(responseSize),
            base.load(fromByteOffset: 24, as: UInt64.self) == identity
        else { return nil }
    }

    /// `req_cons` as last recorded: every request before it was taken.
    public var requestConsumer: UInt32 { atomic(at: 32).pointee.load(ordering: .acquiring) }

    // MARK: recording

    /// The private memory where the request with ring index `index` is
    /// copied when it is taken (the slot's request bytes).
    public func requestBytes(_ index: UInt32) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(
            start: slot(index) + Self.slotHeaderSize, count: requestSize)
    }

    /// The private memory where the response to request `index` is encoded.
    public func responseBytes(_ index: UInt32) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(
            start: slot(index) + Self.slotHeaderSize + requestSize, count: responseSize)
    }

    /// Records that request `index`, already copied into
    /// ``requestBytes(_:)``, was taken: `req_cons` moves past it.
    public func recordTaken(_ index: UInt32) {
        let slot = slot(index)
        slot.storeBytes(of: index, toByteOffset: 4, as: UInt32.self)
        state(slot).pointee.store(SlotState.taken.rawValue, ordering: .releasing)
        atomic(at: 32).pointee.store(index &+ 1, ordering: .releasing)
    }

    /// Records that the response in ``responseBytes(_:)`` answers request
    /// `index` and goes to ring slot `responseIndex`; call before it is
    /// put on the ring.
    public func recordAnswered(_ index: UInt32, responseIndex: UInt32) {
        let slot = slot(index)
        slot.storeBytes(of: responseIndex, toByteOffset: 8, as: UInt32.self)
        state(slot).pointee.store(SlotState.answered.rawValue, ordering: .releasing)
    }

    /// Frees request `index`'s slot once its response is published.
    public func release(_ index: UInt32) {
        state(slot(index)).pointee.store(SlotState.free.rawValue, ordering: .releasing)
    }

    // MARK: recovery

    /// What a restarted backend must do for a ring.
    public struct Recovery: Sendable, Equatable {
        /// Where taking requests resumes (`req_cons`).
        public var requestConsumer: UInt32
        /// Requests taken and never answered: redo them (ring indices, in
        /// the order they were taken).
        public var redo: [UInt32]
        /// Requests answered but not yet published: put their recorded
        /// responses on the ring again.
        public var republish: [UInt32]
    }

    /// Reads the journal against the ring's published `rsp_prod`. Slots
    /// whose responses were published are freed; the others are listed.
    /// Everything is bounded by the slot count whatever the memory holds.
    public func recover(responseProducer: UInt32) -> Recovery {
        let consumer = requestConsumer
        var redo: [UInt32] = []
        var republish: [UInt32] = []
        // Only the last ring's worth of indices before req_cons can be in
        // flight; a slot claiming another index is stale.
        let first = consumer &- slotCount
        for offset in 0..<slotCount {
            let index = first &+ offset
            let slot = slot(index)
            guard slot.load(fromByteOffset: 4, as: UInt32.self) == index else {
                state(slot).pointee.store(SlotState.free.rawValue, ordering: .relaxed)
                continue
            }
            switch SlotState(rawValue: state(slot).pointee.load(ordering: .acquiring)) {
            case .taken:
                redo.append(index)
            case .answered:
                let responseIndex = slot.load(fromByteOffset: 8, as: UInt32.self)
                // Not yet published iff it lies at or after rsp_prod
                // (within a ring's worth).
                if responseIndex &- responseProducer < slotCount {
                    republish.append(index)
                } else {
                    release(index)
                }
            case .free, .none:
                continue
            }
        }
        return Recovery(requestConsumer: consumer, redo: redo, republish: republish)
    }

    // MARK: memory

    private func slot(_ index: UInt32) -> UnsafeMutableRawPointer {
        base + Self.headerSize + Int(index & (slotCount - 1)) * slotStride
    }

    private func state(_ slot: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<UInt32>> {
        slot.bindMemory(to: Atomic<UInt32>.self, capacity: 1)
    }

    private func atomic(at offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (base + offset).bindMemory(to: Atomic<UInt32>.self, capacity: 1)
    }

    private func load32(at offset: Int) -> UInt32 {
        base.load(fromByteOffset: offset, as: UInt32.self)
    }

    private func store32(_ value: UInt32, at offset: Int) {
        base.storeBytes(of: value, toByteOffset: offset, as: UInt32.self)
    }
}
