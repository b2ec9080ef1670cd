import CRingReference
import Testing
import XenBus
import XenBusTesting

/// Offsets of the shared indices in the sring header.
enum Header {
    static let requestProducer = 0
    static let requestEvent = 4
    static let responseProducer = 8
    static let responseEvent = 12
}

@Suite("ring semantics and hostile indices")
struct RingTests {
    typealias Back = BackRing<TestRequest, TestResponse>
    typealias Front = FrontRing<TestRequest, TestResponse>

    @Test("front init writes the header as SHARED_RING_INIT does")
    func frontInit() throws {
        let buffer = PageBuffer(pages: 1, fill: 0xAA)
        let reference = PageBuffer(pages: 1, fill: 0xAA)
        _ = try Front(initializing: buffer.bytes)
        let ring = cref_front_new(CREF_TEST, reference.bytes.baseAddress, 4096, 0, 1)
        cref_front_free(ring)
        #expect(buffer.array == reference.array)
        #expect(buffer.load(Header.requestEvent) == 1)
        #expect(buffer.load(Header.responseEvent) == 1)
        #expect(buffer.array[64] == 0xAA, "slots are left alone")
    }

    @Test("notify only when the peer's event index was crossed")
    func notifyHoldOff() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        var back = try Back(attaching: buffer.bytes)
        // req_event is 1 after init: the first request wakes the backend.
        try front.enqueueRequest(TestRequest(id: 1))
        var notify = front.pushRequests()
        #expect(notify)
        // The backend has not re-armed: further requests do not notify.
        try front.enqueueRequest(TestRequest(id: 2))
        notify = front.pushRequests()
        #expect(!notify)
        var ids = [
            try back.nextRequest()?.id, try back.nextRequest()?.id, try back.nextRequest()?.id,
        ]
        #expect(ids == [1, 2, nil])
        // Final check re-arms req_event = req_cons + 1 and finds nothing.
        var work = try back.finalCheckForRequests()
        #expect(!work)
        #expect(buffer.load(Header.requestEvent) == 3)
        try front.enqueueRequest(TestRequest(id: 3))
        try front.enqueueRequest(TestRequest(id: 4))
        notify = front.pushRequests()
        #expect(notify, "two requests crossing req_event = 3 notify once")
        // Responses: rsp_event is 1, the first push notifies.
        ids = [try back.nextRequest()?.id]
        #expect(ids == [3])
        try back.enqueueResponse(TestResponse(id: 1, status: 0))
        notify = back.pushResponses()
        #expect(notify)
        try back.enqueueResponse(TestResponse(id: 2, status: 0))
        notify = back.pushResponses()
        #expect(!notify)
        work = try front.finalCheckForResponses()
        #expect(work, "responses waiting: no sleep")
        ids = [try front.nextResponse()?.id, try front.nextResponse()?.id]
        #expect(ids == [1, 2])
        work = try front.finalCheckForResponses()
        #expect(!work)
        #expect(buffer.load(Header.responseEvent) == 3)
    }

    @Test("final check catches a request pushed after the first look")
    func finalCheckRace() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        var back = try Back(attaching: buffer.bytes)
        try front.enqueueRequest(TestRequest(id: 1))
        _ = front.pushRequests()
        let first = try back.nextRequest()
        #expect(first?.id == 1)
        // The frontend publishes without looking at req_event (a racing push).
        try front.enqueueRequest(TestRequest(id: 2))
        buffer.store(front.requestProducer, Header.requestProducer)
        let work = try back.finalCheckForRequests()
        #expect(work)
    }

    @Test("the back ring reads a request's slot once: decoding sees a copy, not the slot")
    func slotReadOnce() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        var back = try BackRing<SlotProbe, TestResponse>(attaching: buffer.bytes)
        try front.enqueueRequest(TestRequest(id: 7, op: 2, payload: 99))
        _ = front.pushRequests()
        // The guest rewrites the slot between the decoder's two reads of
        // the same field; a ring that decoded from the shared slot would
        // hand the decoder two different values.
        let slot = UInt(bitPattern: buffer.bytes.baseAddress! + 64)
        let scribble: @Sendable () -> Void = {
            // The first slot of `buffer`, which outlives this closure.
            UnsafeMutableRawPointer(bitPattern: slot)!.storeBytes(of: 0xFFFF_FFFF, as: UInt32.self)
        }
        let taken = try SlotProbe.$scribble.withValue(scribble) { try back.nextRequest() }
        let probe = try #require(taken)
        #expect(buffer.load(64) == 0xFFFF_FFFF, "the guest's rewrite did happen")
        #expect(probe.firstRead == 7)
        #expect(probe.secondRead == 7)
        // Consumed once: the rewritten slot is not read again as a request.
        #expect(try back.nextRequest() == nil)
    }

    @Test(
        "a producer index further ahead than the ring is a guest fault",
        arguments: [UInt32(0), 0xFFFF_FFFE])
    func producerFarAhead(start: UInt32) throws {
        let buffer = PageBuffer(pages: 1)
        cref_sring_set(buffer.bytes.baseAddress, start, start &+ 1, start, start &+ 1)
        var back = try Back(attaching: buffer.bytes, startIndex: start)
        let size = back.geometry.entryCount
        let reference = cref_back_new(CREF_TEST, buffer.bytes.baseAddress, 4096, start)
        defer { cref_back_free(reference) }

        for hostile in [start &+ size &+ 1, start &+ 0x8000_0000, start &- 1] {
            buffer.store(hostile, Header.requestProducer)
            #expect(cref_back_prod_overflow(reference, hostile) != 0)
            let expected = XenBusError.ringProducerOverflow(
                producer: hostile, base: start, ringSize: size)
            #expect(catching { () throws(XenBusError) in _ = try back.nextRequest() } == expected)
            #expect(
                catching { () throws(XenBusError) in _ = try back.finalCheckForRequests() }
                    == expected)
        }
        // Exactly a full ring is legal.
        buffer.store(start &+ size, Header.requestProducer)
        #expect(cref_back_prod_overflow(reference, start &+ size) == 0)
        let available = try back.unconsumedRequests()
        #expect(available == size)
    }

    @Test("never more than ring-size requests outstanding")
    func outstandingBounded() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        var back = try Back(attaching: buffer.bytes)
        let reference = cref_back_new(CREF_TEST, buffer.bytes.baseAddress, 4096, 0)
        defer { cref_back_free(reference) }
        let size = back.geometry.entryCount
        for id in 0..<size { try front.enqueueRequest(TestRequest(id: id)) }
        #expect(
            catching { () throws(XenBusError) in try front.enqueueRequest(TestRequest(id: 999)) }
                == .ringFull)
        _ = front.pushRequests()
        var taken: UInt32 = 0
        while try back.nextRequest() != nil { taken += 1 }
        #expect(taken == size)
        let outstanding = back.outstandingRequests
        #expect(outstanding == size)
        // Nothing answered yet: a frontend pushing one more is impossible...
        buffer.store(size + 1, Header.requestProducer)
        #expect(catching { () throws(XenBusError) in _ = try back.nextRequest() } != nil)
        // ...and at exactly size, nothing more may be consumed (C agrees).
        buffer.store(size, Header.requestProducer)
        let available = try back.unconsumedRequests()
        #expect(available == 0)
        var scratch = [UInt8](repeating: 0, count: 24)
        for _ in 0..<size { _ = cref_back_take(reference, &scratch) }
        #expect(cref_back_unconsumed(reference) == 0)
        #expect(cref_back_cons_overflow(reference) != 0)
    }

    @Test("a producer index moved behind consumed requests is a guest fault")
    func producerRegressed() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        var back = try Back(attaching: buffer.bytes)
        for id in 0..<5 { try front.enqueueRequest(TestRequest(id: UInt32(id))) }
        _ = front.pushRequests()
        for _ in 0..<5 { _ = try back.nextRequest() }
        buffer.store(2, Header.requestProducer)
        #expect(
            catching { () throws(XenBusError) in _ = try back.unconsumedRequests() }
                == .ringProducerRegressed(producer: 2, consumer: 5))
    }

    @Test("a response with no outstanding request is refused")
    func responseWithoutRequest() throws {
        let buffer = PageBuffer(pages: 1)
        _ = try Front(initializing: buffer.bytes)
        var back = try Back(attaching: buffer.bytes)
        #expect(
            catching { () throws(XenBusError) in
                try back.enqueueResponse(TestResponse(id: 1, status: 0))
            } == .ringResponseWithoutRequest)
    }

    @Test("a backend producing too far ahead is caught on the front")
    func responseOverflow() throws {
        let buffer = PageBuffer(pages: 1)
        var front = try Front(initializing: buffer.bytes)
        buffer.store(front.geometry.entryCount + 1, Header.responseProducer)
        #expect(catching { () throws(XenBusError) in _ = try front.nextResponse() } != nil)
    }

    @Test("unusable buffers are errors, not traps")
    func badBuffers() throws {
        let small = PageBuffer(byteCount: 64 + 23)
        #expect(throws: XenBusError.self) { _ = try Back(attaching: small.bytes) }
        let page = PageBuffer(pages: 1)
        let misaligned = UnsafeMutableRawBufferPointer(rebasing: page.bytes[4...])
        #expect(throws: XenBusError.self) { _ = try Back(attaching: misaligned) }
        #expect(throws: XenBusError.self) {
            _ = try Back(attaching: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }

    @Test("multi-page ring over a grant mapping, guest and backend sharing pages")
    func ringOverGrants() throws {
        let grants = FakeGrantTable()
        let guest = grants.grant(from: DomainID(3), pages: 4, writable: true)
        var front = try FrontRing<BlkRequest, BlkResponse>(initializing: guest.bytes)
        let mapping = try grants.map(domain: DomainID(3), refs: guest.refs, writable: true)
        var back = try BackRing<BlkRequest, BlkResponse>(mapping: mapping)
        let slots = back.geometry.entryCount
        #expect(slots == 128)
        for id in 0..<200 {
            if front.isFull {
                _ = front.pushRequests()
                while let request = try back.nextRequest() {
                    try back.enqueueResponse(
                        BlkResponse(id: request.id, operation: request.operation, status: 0))
                }
                _ = back.pushResponses()
                while try front.nextResponse() != nil {}
            }
            try front.enqueueRequest(
                BlkRequest(operation: 1, handle: 0, id: UInt64(id), sector: 8, segments: []))
        }
        _ = front.pushRequests()
        var last: UInt64 = 0
        while let request = try back.nextRequest() { last = request.id }
        #expect(last == 199)
    }

    @Test("a read-only mapping cannot carry a back ring")
    func readOnlyMapping() throws {
        let grants = FakeGrantTable()
        let guest = grants.grant(from: DomainID(3), pages: 1, writable: false)
        let mapping = try grants.map(domain: DomainID(3), refs: guest.refs, writable: false)
        #expect(throws: XenBusError.mappingReadOnly) { _ = try Back(mapping: mapping) }
    }
}

/// The error a typed-throwing body threw, or nil (for bodies that touch
/// noncopyable rings, which #expect cannot capture).
func catching(_ body: () throws(XenBusError) -> Void) -> XenBusError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// A request decoder that reads its first field twice, running
/// ``scribble`` (the guest rewriting the shared slot) in between.
struct SlotProbe: RingDecodable, Equatable {
    static let wireSize = TestRequest.wireSize
    static let wireAlignment = TestRequest.wireAlignment

    /// Runs between the two reads; task-local so parallel tests stay apart.
    @TaskLocal static var scribble: (@Sendable () -> Void)?

    var firstRead: UInt32
    var secondRead: UInt32

    init(ringEntry entry: RingEntryReader) {
        firstRead = entry.load(at: 0)
        Self.scribble?()
        secondRead = entry.load(at: 0)
    }
}
