import Synchronization

/// The frontend half of an io/ring.h shared ring: puts requests on, takes
/// responses off (`X_front_ring_t`). Our own code is the frontend only in
/// tests (fake guests), and for rings our toolstack sets up for itself.
/// Noncopyable for the same reason as ``BackRing``.
public struct FrontRing<Request: RingEncodable, Response: RingDecodable>: ~Copyable {
    /// Slot size and count.
    public let geometry: RingGeometry
    private let base: UnsafeMutableRawPointer
    private let shared: SharedRingIndices
    private let owner: AnyObject?

    /// `req_prod_pvt`: index of the next request slot to fill.
    public private(set) var requestProducer: UInt32
    /// `rsp_cons`: index of the next response to take.
    public private(set) var responseConsumer: UInt32

    /// Initialises the shared header and attaches (`XEN_FRONT_RING_INIT`):
    /// producers 0, event indices 1, padding zeroed.
    public init(initializing buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject? = nil)
        throws(XenBusError)
    {
        let (base, _) = try validateRingBuffer(buffer, Request.self, Response.self)
        // The ring is not shared yet: plain stores are enough for the padding.
        UnsafeMutableRawBufferPointer(start: base + 16, count: RingGeometry.headerSize - 16)
            .initializeMemory(as: UInt8.self, repeating: 0)
        let indices = SharedRingIndices(base: base)
        indices.requestProducer.pointee.store(0, ordering: .relaxed)
        indices.responseProducer.pointee.store(0, ordering: .relaxed)
        indices.requestEvent.pointee.store(1, ordering: .relaxed)
        indices.responseEvent.pointee.store(1, ordering: .relaxed)
        try self.init(attaching: buffer, startIndex: 0, keepAlive: keepAlive)
    }

    /// Attaches to an initialised ring (`FRONT_RING_ATTACH`).
    public init(
        attaching buffer: UnsafeMutableRawBufferPointer, startIndex: UInt32,
        keepAlive: AnyObject? = nil
    ) throws(XenBusError) {
        let (base, geometry) = try validateRingBuffer(buffer, Request.self, Response.self)
        self.base = base
        self.geometry = geometry
        self.shared = SharedRingIndices(base: base)
        self.owner = keepAlive
        self.requestProducer = startIndex
        self.responseConsumer = startIndex
    }

    /// `RING_FREE_REQUESTS`.
    public var freeRequests: UInt32 {
        geometry.entryCount &- (requestProducer &- responseConsumer)
    }

    /// `RING_FULL`.
    public var isFull: Bool { freeRequests == 0 }

    /// Puts a request in the next slot; it becomes visible with
    /// ``pushRequests()``.
    public mutating func enqueueRequest(_ request: Request) throws(XenBusError) {
        guard freeRequests > 0 else { throw .ringFull }
        let slot = UnsafeMutableRawBufferPointer(
            start: base + geometry.slotOffset(requestProducer), count: Request.wireSize)
        slot.initializeMemory(as: UInt8.self, repeating: 0)
        var writer = RingEntryWriter(slot: slot)
        request.encode(to: &writer)
        requestProducer &+= 1
    }

    /// Publishes queued requests (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`);
    /// returns true when the backend asked to be notified.
    public func pushRequests() -> Bool {
        let old = shared.requestProducer.pointee.load(ordering: .relaxed)
        let new = requestProducer
        // Releasing: the backend must see the request slots before the index
        // that hands them over (xen_wmb).
        shared.requestProducer.pointee.store(new, ordering: .releasing)
        // Full fence: req_prod must be visible before we read req_event, else
        // a backend going to sleep in between is never woken (xen_mb).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let event = shared.requestEvent.pointee.load(ordering: .relaxed)
        return needsNotify(old: old, new: new, event: event)
    }

    /// Responses ready to take (`RING_HAS_UNCONSUMED_RESPONSES`); throws for a
    /// producer index the ring cannot hold (`RING_RESPONSE_PROD_OVERFLOW`).
    public func unconsumedResponses() throws(XenBusError) -> UInt32 {
        // Acquiring: response slots written before the backend published
        // rsp_prod must be visible once we see the new index (xen_rmb).
        let producer = shared.responseProducer.pointee.load(ordering: .acquiring)
        if producer &- responseConsumer > geometry.entryCount {
            throw .ringProducerOverflow(
                producer: producer, base: responseConsumer, ringSize: geometry.entryCount)
        }
        return producer &- responseConsumer
    }

    /// Takes the next response, or nil; decoded from a private copy.
    public mutating func nextResponse() throws(XenBusError) -> Response? {
        guard try unconsumedResponses() > 0 else { return nil }
        let slot = base + geometry.slotOffset(responseConsumer)
        let response = withUnsafeTemporaryAllocation(
            byteCount: Response.wireSize, alignment: 16
        ) { copy in
            // One read of the slot; the other end may rewrite it later.
            copy.copyMemory(from: UnsafeRawBufferPointer(start: slot, count: Response.wireSize))
            return Response(ringEntry: RingEntryReader(privateCopy: UnsafeRawBufferPointer(copy)))
        }
        responseConsumer &+= 1
        return response
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: true means responses are waiting.
    public func finalCheckForResponses() throws(XenBusError) -> Bool {
        if try unconsumedResponses() > 0 { return true }
        shared.responseEvent.pointee.store(responseConsumer &+ 1, ordering: .relaxed)
        // Full fence: rsp_event must be visible before we re-read rsp_prod,
        // else a response pushed in between is neither seen nor notified (xen_mb).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return try unconsumedResponses() > 0
    }
}
