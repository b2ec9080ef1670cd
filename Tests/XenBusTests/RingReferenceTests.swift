import CRingReference
import Testing
import XenBus

// Our rings against Xen's own io/ring.h macros (compiled in CRingReference):
// the same operations on four buffers — C front + C back, C front + Swift
// back, Swift front + C back, Swift front + Swift back — must leave identical
// bytes, indices, messages and notify / final-check decisions.

protocol RingKind {
    associatedtype Request: RingDecodable & RingEncodable & Equatable
    associatedtype Response: RingDecodable & RingEncodable & Equatable
    static var cKind: cref_kind { get }
    static func makeRequest(_ rng: inout SplitMix64, serial: UInt32) -> Request
    static func makeResponse(to request: Request, _ rng: inout SplitMix64) -> Response
}

enum SmallRing: RingKind {
    typealias Request = TestRequest
    typealias Response = TestResponse
    static let cKind = CREF_TEST

    static func makeRequest(_ rng: inout SplitMix64, serial: UInt32) -> TestRequest {
        TestRequest(
            id: serial, op: UInt16.random(in: 0...9, using: &rng),
            flags: UInt8.random(in: 0...255, using: &rng), payload: rng.next(), extra: rng.next())
    }

    static func makeResponse(to request: TestRequest, _ rng: inout SplitMix64) -> TestResponse {
        TestResponse(id: request.id, status: Int16.random(in: -5...0, using: &rng))
    }
}

enum BlkifRing: RingKind {
    typealias Request = BlkRequest
    typealias Response = BlkResponse
    static let cKind = CREF_BLKIF

    static func makeRequest(_ rng: inout SplitMix64, serial: UInt32) -> BlkRequest {
        let count = Int.random(in: 0...11, using: &rng)
        // Every field varies (first_sect within 0...last_sect, the handle
        // over its whole range), so a field read or written at a
        // neighbour's offset gives different bytes than the C layout.
        return BlkRequest(
            operation: UInt8.random(in: 0...3, using: &rng),
            handle: UInt16.random(in: 1...UInt16.max, using: &rng), id: UInt64(serial),
            sector: rng.next() >> 20,
            segments: (0..<count).map { _ in
                let last = UInt8.random(in: 1...7, using: &rng)
                return BlkRequest.Segment(
                    gref: UInt32.random(in: 8...4096, using: &rng),
                    firstSector: UInt8.random(in: 0..<last, using: &rng), lastSector: last)
            })
    }

    static func makeResponse(to request: BlkRequest, _ rng: inout SplitMix64) -> BlkResponse {
        BlkResponse(id: request.id, operation: request.operation, status: 0)
    }
}

func encodeBytes<M: RingEncodable>(_ message: M) -> [UInt8] {
    RingEntryWriter.encode(count: M.wireSize) { message.encode(to: &$0) }
}

func decodeBytes<M: RingDecodable>(_ bytes: [UInt8], as type: M.Type) -> M {
    RingEntryReader.withCopy(of: bytes) { M(ringEntry: $0) }
}

// MARK: the two halves behind one interface, messages as raw bytes

protocol FrontHalf: AnyObject {
    var free: UInt32 { get }
    var indices: [UInt32] { get }
    func put(_ request: [UInt8]) throws -> Bool
    func push() -> Bool
    func unconsumed() throws -> UInt32
    func take() throws -> [UInt8]?
    func finalCheck() throws -> Bool
}

protocol BackHalf: AnyObject {
    var indices: [UInt32] { get }
    func unconsumed() throws -> UInt32
    func take() throws -> [UInt8]?
    func put(_ response: [UInt8]) throws
    func push() -> Bool
    func finalCheck() throws -> Bool
}

final class CFront<K: RingKind>: FrontHalf {
    let ring: OpaquePointer

    init(_ buffer: PageBuffer, start: UInt32, initialize: Bool) {
        ring = cref_front_new(
            K.cKind, buffer.bytes.baseAddress, buffer.bytes.count, start, initialize ? 1 : 0)
    }

    deinit { cref_front_free(ring) }

    var free: UInt32 { cref_front_free_requests(ring) }
    var indices: [UInt32] { [cref_front_req_prod_pvt(ring), cref_front_rsp_cons(ring)] }

    func put(_ request: [UInt8]) -> Bool {
        request.withUnsafeBytes { cref_front_put(ring, $0.baseAddress) } != 0
    }

    func push() -> Bool { cref_front_push(ring) != 0 }
    func unconsumed() -> UInt32 { cref_front_unconsumed(ring) }

    func take() -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: K.Response.wireSize)
        let taken = out.withUnsafeMutableBytes { cref_front_take(ring, $0.baseAddress) }
        return taken != 0 ? out : nil
    }

    func finalCheck() -> Bool { cref_front_final_check(ring) != 0 }
}

final class SwiftFront<K: RingKind>: FrontHalf {
    var ring: FrontRing<K.Request, K.Response>

    init(_ buffer: PageBuffer, start: UInt32, initialize: Bool) throws {
        ring =
            initialize
            ? try FrontRing(initializing: buffer.bytes, keepAlive: buffer)
            : try FrontRing(attaching: buffer.bytes, startIndex: start, keepAlive: buffer)
    }

    var free: UInt32 { ring.freeRequests }
    var indices: [UInt32] { [ring.requestProducer, ring.responseConsumer] }

    func put(_ request: [UInt8]) throws -> Bool {
        guard !ring.isFull else { return false }
        try ring.enqueueRequest(decodeBytes(request, as: K.Request.self))
        return true
    }

    func push() -> Bool { ring.pushRequests() }
    func unconsumed() throws -> UInt32 { try ring.unconsumedResponses() }

    func take() throws -> [UInt8]? {
        guard let response = try ring.nextResponse() else { return nil }
        return encodeBytes(response)
    }

    func finalCheck() throws -> Bool { try ring.finalCheckForResponses() }
}

final class CBack<K: RingKind>: BackHalf {
    let ring: OpaquePointer

    init(_ buffer: PageBuffer, start: UInt32) {
        ring = cref_back_new(K.cKind, buffer.bytes.baseAddress, buffer.bytes.count, start)
    }

    deinit { cref_back_free(ring) }

    var indices: [UInt32] { [cref_back_rsp_prod_pvt(ring), cref_back_req_cons(ring)] }
    func unconsumed() -> UInt32 { cref_back_unconsumed(ring) }

    func take() -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: K.Request.wireSize)
        let taken = out.withUnsafeMutableBytes { cref_back_take(ring, $0.baseAddress) }
        return taken != 0 ? out : nil
    }

    func put(_ response: [UInt8]) {
        response.withUnsafeBytes { cref_back_put(ring, $0.baseAddress) }
    }

    func push() -> Bool { cref_back_push(ring) != 0 }
    func finalCheck() -> Bool { cref_back_final_check(ring) != 0 }
}

final class SwiftBack<K: RingKind>: BackHalf {
    var ring: BackRing<K.Request, K.Response>

    init(_ buffer: PageBuffer, start: UInt32) throws {
        ring = try BackRing(attaching: buffer.bytes, startIndex: start, keepAlive: buffer)
    }

    var indices: [UInt32] { [ring.responseProducer, ring.requestConsumer] }
    func unconsumed() throws -> UInt32 { try ring.unconsumedRequests() }

    func take() throws -> [UInt8]? {
        guard let request = try ring.nextRequest() else { return nil }
        return encodeBytes(request)
    }

    func put(_ response: [UInt8]) throws {
        try ring.enqueueResponse(decodeBytes(response, as: K.Response.self))
    }

    func push() -> Bool { ring.pushResponses() }
    func finalCheck() throws -> Bool { try ring.finalCheckForRequests() }
}

/// One buffer with a front and a back half on it.
final class RingPair {
    let name: String
    let buffer: PageBuffer
    let front: any FrontHalf
    let back: any BackHalf
    var outstanding: [[UInt8]] = []

    init(name: String, buffer: PageBuffer, front: any FrontHalf, back: any BackHalf) {
        self.name = name
        self.buffer = buffer
        self.front = front
        self.back = back
    }
}

/// Runs `steps` random operations on all four pairings and requires them to
/// agree after every step.
func runDifferential<K: RingKind>(
    _ kind: K.Type, pages: Int, start: UInt32, seed: UInt64, steps: Int
) throws {
    var rng = SplitMix64(seed: seed)
    let garbage = (0..<(pages * xenPageSize)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    let initialize = start == 0
    func buffer() -> PageBuffer {
        let buffer = PageBuffer(pages: pages)
        buffer.bytes.copyBytes(from: garbage)
        if !initialize {
            // What XEN_FRONT_RING_INIT would have left, shifted to `start`.
            cref_sring_set(buffer.bytes.baseAddress, start, start &+ 1, start, start &+ 1)
        }
        return buffer
    }
    let buffers = (0..<4).map { _ in buffer() }
    let pairs = [
        RingPair(
            name: "C/C", buffer: buffers[0],
            front: CFront<K>(buffers[0], start: start, initialize: initialize),
            back: CBack<K>(buffers[0], start: start)),
        RingPair(
            name: "C/Swift", buffer: buffers[1],
            front: CFront<K>(buffers[1], start: start, initialize: initialize),
            back: try SwiftBack<K>(buffers[1], start: start)),
        RingPair(
            name: "Swift/C", buffer: buffers[2],
            front: try SwiftFront<K>(buffers[2], start: start, initialize: initialize),
            back: CBack<K>(buffers[2], start: start)),
        RingPair(
            name: "Swift/Swift", buffer: buffers[3],
            front: try SwiftFront<K>(buffers[3], start: start, initialize: initialize),
            back: try SwiftBack<K>(buffers[3], start: start)),
    ]
    let size = cref_front_size((pairs[0].front as! CFront<K>).ring)
    var serial: UInt32 = 0

    for step in 0..<steps {
        let op = Int.random(in: 0..<8, using: &rng)
        var results: [[String]] = Array(repeating: [], count: pairs.count)
        switch op {
        case 0:  // frontend produces
            let count = Int.random(in: 0...Int(pairs[0].front.free), using: &rng)
            var requests: [[UInt8]] = []
            for _ in 0..<count {
                serial &+= 1
                let request = K.makeRequest(&rng, serial: serial)
                let bytes = encodeBytes(request)
                // Every field varies, so an encoder and decoder that disagree
                // on an offset (first_sect written where last_sect is read)
                // lose a value here.
                try #require(
                    decodeBytes(bytes, as: K.Request.self) == request,
                    "step \(step): \(request) does not survive its own encoding")
                requests.append(bytes)
            }
            for (index, pair) in pairs.enumerated() {
                for request in requests {
                    results[index].append("put \(try pair.front.put(request))")
                }
            }
        case 1:
            for (index, pair) in pairs.enumerated() {
                results[index].append("push \(pair.front.push())")
            }
        case 2:  // backend consumes
            let limit = Int.random(in: 1...Int(size), using: &rng)
            for (index, pair) in pairs.enumerated() {
                for _ in 0..<limit {
                    guard let request = try pair.back.take() else { break }
                    pair.outstanding.append(request)
                    results[index].append("req \(request)")
                }
            }
        case 3:  // backend answers some outstanding requests
            let count = Int.random(in: 0...pairs[0].outstanding.count, using: &rng)
            let responses = pairs[0].outstanding.prefix(count).map {
                encodeBytes(K.makeResponse(to: decodeBytes($0, as: K.Request.self), &rng))
            }
            for pair in pairs {
                for response in responses { try pair.back.put(response) }
                pair.outstanding.removeFirst(min(count, pair.outstanding.count))
            }
        case 4:
            for (index, pair) in pairs.enumerated() {
                results[index].append("push \(pair.back.push())")
            }
        case 5:
            for (index, pair) in pairs.enumerated() {
                results[index].append("final \(try pair.back.finalCheck())")
            }
        case 6:  // frontend consumes responses
            let limit = Int.random(in: 1...Int(size), using: &rng)
            for (index, pair) in pairs.enumerated() {
                for _ in 0..<limit {
                    guard let response = try pair.front.take() else { break }
                    results[index].append("rsp \(response)")
                }
            }
        default:
            for (index, pair) in pairs.enumerated() {
                results[index].append("final \(try pair.front.finalCheck())")
            }
        }
        for (index, pair) in pairs.enumerated() {
            results[index].append("front \(pair.front.indices) \(try pair.front.unconsumed())")
            results[index].append("back \(pair.back.indices) \(try pair.back.unconsumed())")
        }
        for index in 1..<pairs.count {
            try #require(
                results[index] == results[0],
                "step \(step) op \(op): \(pairs[index].name) differs from C/C")
            try #require(
                pairs[index].buffer.sameBytes(as: pairs[0].buffer),
                "step \(step) op \(op): \(pairs[index].name) bytes differ from C/C")
        }
    }
}

@Suite("ring against io/ring.h")
struct RingReferenceTests {
    @Test("a blkif request's bytes, field by field (io/blkif.h)")
    func blkifRequestBytes() {
        let request = BlkRequest(
            operation: 1, handle: 0xCA01, id: 0x1122_3344_5566_7788, sector: 0x0102_0304_0506,
            segments: [
                BlkRequest.Segment(gref: 0x0A0B_0C0D, firstSector: 2, lastSector: 6),
                BlkRequest.Segment(gref: 9, firstSector: 0, lastSector: 7),
            ])
        var expected = [UInt8](repeating: 0, count: BlkRequest.wireSize)
        expected[0] = 1  // operation (BLKIF_OP_WRITE)
        expected[1] = 2  // nr_segments
        expected[2...3] = [0x01, 0xCA]  // handle, little-endian
        // bytes 4-7: padding before the 8-byte id
        expected[8...15] = [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]  // id
        expected[16...23] = [0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0]  // sector_number
        expected[24...27] = [0x0D, 0x0C, 0x0B, 0x0A]  // seg[0].gref
        expected[28] = 2  // seg[0].first_sect
        expected[29] = 6  // seg[0].last_sect (30-31: padding)
        expected[32...35] = [9, 0, 0, 0]  // seg[1].gref
        expected[36] = 0  // seg[1].first_sect
        expected[37] = 7  // seg[1].last_sect
        #expect(encodeBytes(request) == expected)
        #expect(decodeBytes(expected, as: BlkRequest.self) == request)
        // The header offsets above are the C struct's.
        #expect(cref_blkif_request_offset(2) == 2)
        #expect(cref_blkif_request_offset(5) == 24)
        #expect(cref_blkif_request_offset(6) == 8)
    }

    @Test("message layouts match the C structs")
    func layouts() {
        #expect(cref_request_size(CREF_TEST) == TestRequest.wireSize)
        #expect(cref_response_size(CREF_TEST) == TestResponse.wireSize)
        #expect(cref_request_size(CREF_BLKIF) == BlkRequest.wireSize)
        #expect(cref_response_size(CREF_BLKIF) == BlkResponse.wireSize)
        #expect(cref_test_request_offset(0) == 0)
        #expect(cref_test_request_offset(1) == 4)
        #expect(cref_test_request_offset(2) == 6)
        #expect(cref_test_request_offset(3) == 8)
        #expect(cref_test_request_offset(4) == 16)
        #expect(cref_test_response_offset(1) == 4)
        #expect(cref_blkif_request_offset(0) == 0)
        #expect(cref_blkif_request_offset(1) == 1)
        #expect(cref_blkif_request_offset(2) == 2)
        #expect(cref_blkif_request_offset(3) == 8)
        #expect(cref_blkif_request_offset(4) == 16)
        #expect(cref_blkif_request_offset(5) == BlkRequest.segmentsOffset)
        #expect(cref_blkif_request_offset(6) == BlkRequest.segmentStride)
        #expect(cref_blkif_response_offset(1) == 8)
        #expect(cref_blkif_response_offset(2) == 10)
        #expect(cref_ring_offset(CREF_TEST) == RingGeometry.headerSize)
        #expect(cref_ring_offset(CREF_BLKIF) == RingGeometry.headerSize)
    }

    @Test(
        "geometry equals __CONST_RING_SIZE",
        arguments: [88, 100, 200, 1000, 4096, 8192, 3 * 4096, 16384, 65536, 1 << 20])
    func geometry(bytes: Int) throws {
        let small = try RingGeometry(
            bufferSize: bytes, request: TestRequest.self, response: TestResponse.self)
        #expect(small.entrySize == cref_entry_size(CREF_TEST))
        #expect(small.entryCount == cref_const_ring_size(CREF_TEST, bytes))
        if bytes >= 64 + 112 {
            let blk = try RingGeometry(
                bufferSize: bytes, request: BlkRequest.self, response: BlkResponse.self)
            #expect(blk.entrySize == cref_entry_size(CREF_BLKIF))
            #expect(blk.entryCount == cref_const_ring_size(CREF_BLKIF, bytes))
        }
    }

    @Test("blkif ring sizes: 32 slots per page, 512 for order 4")
    func blkifSizes() throws {
        #expect(
            try RingGeometry(bufferSize: 4096, request: BlkRequest.self, response: BlkResponse.self)
                .entryCount == 32)
        #expect(
            try RingGeometry(
                bufferSize: 16 * 4096, request: BlkRequest.self, response: BlkResponse.self
            ).entryCount == 512)
    }

    @Test(
        "small ring: C and Swift halves agree byte for byte",
        arguments: [UInt32(0), 0xFFFF_FFF0, UInt32.max - 2, 0x7FFF_FFF9], [1, 2])
    func smallDifferential(start: UInt32, pages: Int) throws {
        for seed in UInt64(1)...3 {
            try runDifferential(
                SmallRing.self, pages: pages, start: start, seed: seed &* 7919 &+ UInt64(start),
                steps: 300)
        }
    }

    @Test(
        "blkif ring: C and Swift halves agree byte for byte",
        arguments: [UInt32(0), UInt32.max - 20, UInt32.max], [1, 4])
    func blkifDifferential(start: UInt32, pages: Int) throws {
        try runDifferential(
            BlkifRing.self, pages: pages, start: start, seed: 42 &+ UInt64(start), steps: 400)
    }
}
