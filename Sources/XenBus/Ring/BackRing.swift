import Synchronization

/// The backend half of an io/ring.h shared ring: takes requests off, puts
/// responses on (`X_back_ring_t` with the BACK_RING and RING_* macros).
///
/// The shared header is read and written atomically; the private indices
/// (`rsp_prod_pvt`, `req_cons`) live here, so the struct is noncopyable: two
/// copies would disagree about what has been consumed. The ring never
/// notifies; push and final-check return what the caller must do.
///
/// Against a hostile frontend: at most ``RingGeometry/entryCount``
/// requests are ever outstanding (consumed but not answered), a producer
/// index further ahead than that, or behind what was consumed, is reported
/// as a guest fault, and each request is copied out of shared memory exactly
/// once before it is decoded.
public struct BackRing<Request: RingDecodable, Response: RingEncodable>: ~Copyable {
    /// Slot size and count.
    public let geometry: RingGeometry
    private let base: UnsafeMutableRawPointer
    private let shared: SharedRingIndices
    private let owner: AnyObject?

    /// `rsp_prod_pvt`: index of the next response slot to fill.
    public private(set) var responseProducer: UInt32
    /// `req_cons`: index of the next request to take.
    public private(set) var requestConsumer: UInt32

    /// Attaches to a ring the frontend initialised (`BACK_RING_ATTACH`; with
    /// `startIndex` 0, `BACK_RING_INIT`). `keepAlive` is retained for the
    /// ring's lifetime (the object that owns `buffer`).
    public init(
        attaching buffer: UnsafeMutableRawBufferPointer, startIndex: UInt32 = 0,
        keepAlive: AnyObject? = nil
    ) throws(XenBusError) {
        let (base, geometry) = try validateRingBuffer(buffer, Request.self, Response.self)
        self.base = base
        self.geometry = geometry
        self.shared = SharedRingIndices(base: base)
        self.owner = keepAlive
        self.responseProducer = startIndex
        self.requestConsumer = startIndex
    }

    /// Attaches to a ring in a writable grant mapping, keeping it mapped.
    public init(mapping: GrantMapping, startIndex: UInt32 = 0) throws(XenBusError) {
        try self.init(
            attaching: try mapping.writableBytes(), startIndex: startIndex, keepAlive: mapping)
    }

    /// Attaches to a live ring after a backend restart: responses resume
    /// at the published `rsp_prod`, requests at `requestConsumer` (from the
    /// ring's journal; without one, `rsp_prod`, which re-reads every
    /// request not yet answered). A consumer the shared indices cannot
    /// explain (more than a ring ahead of `rsp_prod`, or ahead of
    /// `req_prod`) is a guest fault: the guest owns those indices' memory.
    public init(
        resuming buffer: UnsafeMutableRawBufferPointer, requestConsumer: UInt32?,
        keepAlive: AnyObject? = nil
    ) throws(XenBusError) {
        let (base, geometry) = try validateRingBuffer(buffer, Request.self, Response.self)
        let shared = SharedRingIndices(base: base)
        let published = shared.responseProducer.pointee.load(ordering: .acquiring)
        let producer = shared.requestProducer.pointee.load(ordering: .acquiring)
        let consumer = requestConsumer ?? published
        if consumer &- published > geometry.entryCount {
            throw .ringProducerOverflow(
                producer: consumer, base: published, ringSize: geometry.entryCount)
        }
        if producer &- consumer > geometry.entryCount {
            throw .ringProducerRegressed(producer: producer, consumer: consumer)
        }
        self.base = base
        self.geometry = geometry
        self.shared = shared
        self.owner = keepAlive
        self.responseProducer = published
        self.requestConsumer = consumer
    }

    /// Requests consumed and not yet answered.
    public var outstandingRequests: UInt32 { requestConsumer &- responseProducer }

    /// Requests ready to take (`RING_HAS_UNCONSUMED_REQUESTS`), never more than
    /// the slots not held by outstanding requests. Throws a guest fault for
    /// an impossible producer index (`RING_REQUEST_PROD_OVERFLOW`, or an
    /// index behind `req_cons`).
    public func unconsumedRequests() throws(XenBusError) -> UInt32 {
        // Acquiring: request slots written before the frontend published
        // req_prod must be visible once we see the new index (xen_rmb).
        let producer = shared.requestProducer.pointee.load(ordering: .acquiring)
        let size = geometry.entryCount
        let published = producer &- responseProducer
        if published > size {
            throw .ringProducerOverflow(
                producer: producer, base: responseProducer, ringSize: size)
        }
        if published < outstandingRequests {
            throw .ringProducerRegressed(producer: producer, consumer: requestConsumer)
        }
        let requests = producer &- requestConsumer
        let room = size &- outstandingRequests
        return min(requests, room)
    }

    /// Takes the next request, or nil when there is none. The slot is copied
    /// once into private memory and decoded from that copy.
    public mutating func nextRequest() throws(XenBusError) -> Request? {
        guard try unconsumedRequests() > 0 else { return nil }
        let slot = base + geometry.slotOffset(requestConsumer)
        let request = withUnsafeTemporaryAllocation(
            byteCount: Request.wireSize, alignment: 16
        ) { copy in
            // The only read of the slot: the guest may rewrite it at any
            // time, so decoding and validation see this copy only.
            copy.copyMemory(from: UnsafeRawBufferPointer(start: slot, count: Request.wireSize))
            return Request(ringEntry: RingEntryReader(privateCopy: UnsafeRawBufferPointer(copy)))
        }
        requestConsumer &+= 1
        return request
    }

    /// Takes the next request, copying its slot once into `destination`
    /// (private memory of at least `Request.wireSize` bytes, e.g. a ring
    /// journal's slot) and decoding from that copy. Returns the request
    /// and its ring index.
    public mutating func nextRequest(copyingInto destination: UnsafeMutableRawBufferPointer)
        throws(XenBusError) -> (index: UInt32, request: Request)?
    {
        guard try unconsumedRequests() > 0 else { return nil }
        guard destination.count >= Request.wireSize, let target = destination.baseAddress else {
            throw .ringBufferInvalid("request copy needs \(Request.wireSize) bytes")
        }
        let slot = base + geometry.slotOffset(requestConsumer)
        target.copyMemory(from: slot, byteCount: Request.wireSize)
        let request = Request(
            ringEntry: RingEntryReader(
                privateCopy: UnsafeRawBufferPointer(start: target, count: Request.wireSize)))
        let index = requestConsumer
        requestConsumer &+= 1
        return (index, request)
    }

    /// Puts an encoded response (exactly `Response.wireSize` bytes, e.g.
    /// from a ring journal) in the next slot.
    public mutating func enqueueResponse(encoded bytes: UnsafeRawBufferPointer)
        throws(XenBusError)
    {
        guard outstandingRequests > 0 else { throw .ringResponseWithoutRequest }
        guard bytes.count == Response.wireSize, let source = bytes.baseAddress else {
            throw .ringBufferInvalid("encoded response of \(bytes.count) bytes")
        }
        (base + geometry.slotOffset(responseProducer))
            .copyMemory(from: source, byteCount: Response.wireSize)
        responseProducer &+= 1
    }

    /// Puts a response in the next slot (`RING_GET_RESPONSE` + `rsp_prod_pvt++`);
    /// it becomes visible with ``pushResponses()``. Throws if every consumed
    /// request is already answered: that slot may hold an unread request.
    public mutating func enqueueResponse(_ response: Response) throws(XenBusError) {
        guard outstandingRequests > 0 else { throw .ringResponseWithoutRequest }
        let slot = UnsafeMutableRawBufferPointer(
            start: base + geometry.slotOffset(responseProducer), count: Response.wireSize)
        slot.initializeMemory(as: UInt8.self, repeating: 0)
        var writer = RingEntryWriter(slot: slot)
        response.encode(to: &writer)
        responseProducer &+= 1
    }

    /// Publishes queued responses (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`);
    /// returns true when the frontend asked to be notified.
    public func pushResponses() -> Bool {
        let old = shared.responseProducer.pointee.load(ordering: .relaxed)
        let new = responseProducer
        // Releasing: the frontend must see the response slots (and our last
        // reads of request slots must be done) before the index that hands
        // them over (xen_wmb).
        shared.responseProducer.pointee.store(new, ordering: .releasing)
        // Full fence: rsp_prod must be visible before we read rsp_event, else
        // a frontend going to sleep in between is never woken (xen_mb).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let event = shared.responseEvent.pointee.load(ordering: .relaxed)
        return needsNotify(old: old, new: new, event: event)
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: before sleeping, asks for a
    /// notification on the next request and re-checks; true means there is
    /// work, so do not sleep.
    public func finalCheckForRequests() throws(XenBusError) -> Bool {
        if try unconsumedRequests() > 0 { return true }
        shared.requestEvent.pointee.store(requestConsumer &+ 1, ordering: .relaxed)
        // Full fence: req_event must be visible before we re-read req_prod,
        // else a request pushed in between is neither seen nor notified (xen_mb).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return try unconsumedRequests() > 0
    }
}
