import Synchronization

/// The shape of an io/ring.h shared ring in a buffer: a 64-byte header
/// (`req_prod, req_event, rsp_prod, rsp_event`, 4 bytes `pvt`, 44 bytes
/// `__pad`) followed by entries sized as the request/response union, as many
/// as fit rounded down to a power of two.
public struct RingGeometry: Sendable, Equatable {
    /// `offsetof(struct X_sring, ring)`.
    public static let headerSize = 64
    static let requestProducerOffset = 0
    static let requestEventOffset = 4
    static let responseProducerOffset = 8
    static let responseEventOffset = 12

    /// Bytes per slot: `sizeof(union X_sring_entry)`.
    public let entrySize: Int
    /// Number of slots, a power of two (`RING_SIZE`).
    public let entryCount: UInt32

    /// The geometry `__RING_SIZE` gives for `bufferSize` bytes.
    public init(bufferSize: Int, entrySize: Int) throws(XenBusError) {
        guard entrySize > 0 else { throw .ringBufferInvalid("entry size \(entrySize)") }
        guard bufferSize >= Self.headerSize + entrySize else {
            throw .ringBufferInvalid(
                "\(bufferSize) bytes cannot hold the header and one \(entrySize)-byte entry")
        }
        let fitting = min((bufferSize - Self.headerSize) / entrySize, 1 << 31)
        self.entrySize = entrySize
        self.entryCount = UInt32(1) << (UInt32.bitWidth - 1 - UInt32(fitting).leadingZeroBitCount)
    }

    /// The geometry for a ring of `Request`/`Response` over `bufferSize` bytes.
    public init<Request: RingMessage, Response: RingMessage>(
        bufferSize: Int, request: Request.Type, response: Response.Type
    ) throws(XenBusError) {
        try self.init(
            bufferSize: bufferSize, entrySize: try Self.unionSize(Request.self, Response.self))
    }

    /// `sizeof` of the C union of the two messages: the larger size rounded up
    /// to the stricter alignment.
    public static func unionSize<A: RingMessage, B: RingMessage>(_ a: A.Type, _ b: B.Type)
        throws(XenBusError) -> Int
    {
        let alignment = max(A.wireAlignment, B.wireAlignment)
        guard A.wireSize > 0, B.wireSize > 0, alignment > 0, alignment & (alignment - 1) == 0
        else {
            throw .ringBufferInvalid(
                "message sizes \(A.wireSize)/\(B.wireSize), alignment \(alignment)")
        }
        let size = max(A.wireSize, B.wireSize)
        return (size + alignment - 1) & ~(alignment - 1)
    }

    /// Bytes the header and slots occupy.
    public var usedBytes: Int { Self.headerSize + Int(entryCount) * entrySize }

    /// Byte offset of the slot for a free-running ring index.
    func slotOffset(_ index: UInt32) -> Int {
        Self.headerSize + Int(index & (entryCount - 1)) * entrySize
    }
}

/// The four shared indices of a ring header, accessed atomically because the
/// other domain writes them concurrently.
struct SharedRingIndices {
    let requestProducer: UnsafeMutablePointer<Atomic<UInt32>>
    let requestEvent: UnsafeMutablePointer<Atomic<UInt32>>
    let responseProducer: UnsafeMutablePointer<Atomic<UInt32>>
    let responseEvent: UnsafeMutablePointer<Atomic<UInt32>>

    init(base: UnsafeMutableRawPointer) {
        // Binding is sound: these 4-byte words are only ever accessed as
        // 32-bit atomics here (on x86 a plain aligned mov, as in C).
        requestProducer = (base + RingGeometry.requestProducerOffset)
            .bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        requestEvent = (base + RingGeometry.requestEventOffset)
            .bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        responseProducer = (base + RingGeometry.responseProducerOffset)
            .bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        responseEvent = (base + RingGeometry.responseEventOffset)
            .bindMemory(to: Atomic<UInt32>.self, capacity: 1)
    }
}

/// Checks a ring buffer and returns its base address and geometry.
func validateRingBuffer<Request: RingMessage, Response: RingMessage>(
    _ buffer: UnsafeMutableRawBufferPointer, _ request: Request.Type, _ response: Response.Type
) throws(XenBusError) -> (UnsafeMutableRawPointer, RingGeometry) {
    guard let base = buffer.baseAddress else { throw .ringBufferInvalid("empty buffer") }
    guard Int(bitPattern: base) % 8 == 0 else {
        throw .ringBufferInvalid("base address \(base) not 8-byte aligned")
    }
    let geometry = try RingGeometry(
        bufferSize: buffer.count, request: Request.self, response: Response.self)
    return (base, geometry)
}

/// io/ring.h's notification test: notify if the peer's event index lies in
/// `(old, new]`, i.e. the peer asked to be woken for one of the entries just
/// published. All arithmetic wraps at 2^32.
@inline(__always)
func needsNotify(old: UInt32, new: UInt32, event: UInt32) -> Bool {
    (new &- event) < (new &- old)
}
