import Testing
import XenBus
import XenBusTesting

/// Offsets of `struct xencons_interface` (io/console.h), written out here
/// rather than taken from ``ConsoleRingLayout`` so a wrong constant fails.
private enum Page {
    static let input = 0  // char in[1024]
    static let output = 1024  // char out[2048]
    static let inputConsumer = 3072  // in_cons
    static let inputProducer = 3076  // in_prod
    static let outputConsumer = 3080  // out_cons
    static let outputProducer = 3084  // out_prod
}

/// Bytes 0, 1, 2, ... wrapping at 251 (a prime, so ring positions and
/// byte values never line up by accident).
private func pattern(_ count: Int, from start: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8((start + $0) % 251) }
}

/// Runs `body` over a scratch copy of `bytes` (typed throws cannot pass
/// through Array's rethrowing buffer accessors).
private func withScratch<R>(
    _ bytes: [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(XenBusError) -> R
) throws(XenBusError) -> R {
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { scratch.deallocate() }
    scratch.copyBytes(from: bytes)
    return try body(scratch)
}

/// Reads through `read` into a scratch buffer of `limit` bytes.
private func collect(
    limit: Int, _ read: (UnsafeMutableRawBufferPointer) throws(XenBusError) -> Int
) throws(XenBusError) -> [UInt8] {
    try withScratch([UInt8](repeating: 0xEE, count: limit)) { (buffer) throws(XenBusError) in
        let count = try read(buffer)
        return Array(buffer[0..<count])
    }
}

extension ConsoleBackRing {
    /// Reads up to `limit` output bytes.
    mutating func read(limit: Int) throws(XenBusError) -> [UInt8] {
        try collect(limit: limit) { (buffer) throws(XenBusError) in try readOutput(into: buffer) }
    }

    /// Writes input bytes; returns how many fitted.
    mutating func write(_ bytes: [UInt8]) throws(XenBusError) -> Int {
        try withScratch(bytes) { (buffer) throws(XenBusError) in
            try writeInput(UnsafeRawBufferPointer(buffer))
        }
    }
}

extension ConsoleFrontRing {
    /// Writes output bytes; returns how many fitted.
    mutating func write(_ bytes: [UInt8]) throws(XenBusError) -> Int {
        try withScratch(bytes) { (buffer) throws(XenBusError) in
            try writeOutput(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Reads up to `limit` input bytes.
    mutating func read(limit: Int) throws(XenBusError) -> [UInt8] {
        try collect(limit: limit) { (buffer) throws(XenBusError) in try readInput(into: buffer) }
    }
}

@Suite("console ring (xencons_interface)")
struct ConsoleRingTests {
    @Test("bytes and indices land where io/console.h puts them")
    func layout() throws {
        let page = PageBuffer(pages: 1, fill: 0xAA)
        var guest = try ConsoleFrontRing(initializing: page.bytes)
        var back = try ConsoleBackRing(attaching: page.bytes)
        #expect(page.array[0..<3088].allSatisfy { $0 == 0 }, "rings and indices zeroed")
        #expect(page.array[3088] == 0xAA, "nothing past the interface is touched")

        #expect(try guest.write([0x41, 0x42]) == 2)
        #expect(page.array[Page.output] == 0x41)
        #expect(page.array[Page.output + 1] == 0x42)
        #expect(page.load(Page.outputProducer) == 2)
        #expect(try back.read(limit: 16) == [0x41, 0x42])
        #expect(page.load(Page.outputConsumer) == 2)

        #expect(try back.write([0x0D]) == 1)
        #expect(page.array[Page.input] == 0x0D)
        #expect(page.load(Page.inputProducer) == 1)
        #expect(try guest.read(limit: 4) == [0x0D])
        #expect(page.load(Page.inputConsumer) == 1)
    }

    @Test("an empty ring reads nothing and leaves out_cons alone")
    func emptyRing() throws {
        let page = PageBuffer(pages: 1)
        _ = try ConsoleFrontRing(initializing: page.bytes, startIndex: 77)
        var back = try ConsoleBackRing(attaching: page.bytes)
        #expect(try back.pendingOutput() == 0)
        #expect(try back.read(limit: 64) == [])
        #expect(back.outputConsumer == 77)
        #expect(try back.freeInput() == 1024)
    }

    @Test("a full ring takes no more, in both directions")
    func fullRing() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes)
        var back = try ConsoleBackRing(attaching: page.bytes)

        #expect(try guest.write(pattern(3000)) == 2048)
        #expect(try guest.freeOutput() == 0)
        #expect(try guest.write([1]) == 0)
        #expect(try back.pendingOutput() == 2048)
        #expect(try back.read(limit: 4096) == pattern(2048))
        #expect(try guest.freeOutput() == 2048)

        #expect(try back.write(pattern(1500, from: 9)) == 1024)
        #expect(try back.freeInput() == 0)
        #expect(try back.write([1]) == 0)
        #expect(try guest.read(limit: 2000) == pattern(1024, from: 9))
        #expect(try back.freeInput() == 1024)
    }

    @Test("partial reads and writes continue where they stopped")
    func partialTransfers() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes)
        var back = try ConsoleBackRing(attaching: page.bytes)
        let text = pattern(1000)
        #expect(try guest.write(Array(text[0..<300])) == 300)
        #expect(try back.read(limit: 100) == Array(text[0..<100]))
        #expect(try guest.write(Array(text[300...])) == 700)
        #expect(try back.pendingOutput() == 900)
        #expect(try back.read(limit: 450) == Array(text[100..<550]))
        #expect(try back.read(limit: 1000) == Array(text[550...]))
        #expect(back.outputConsumer == 1000)

        let keys = pattern(1000, from: 3)
        #expect(try back.write(Array(keys[0..<800])) == 800)
        #expect(try guest.read(limit: 500) == Array(keys[0..<500]))
        // 300 bytes still in use, 724 free: all 200 fit.
        #expect(try back.write(Array(keys[800...])) == 200)
        #expect(try guest.read(limit: 1000) == Array(keys[500...]))
    }

    @Test(
        "indices wrap across 2^32 with the bytes intact", arguments: [UInt32.max - 700, UInt32.max])
    func wrapAround(start: UInt32) throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes, startIndex: start)
        var back = try ConsoleBackRing(attaching: page.bytes)
        var sent = 0
        for chunk in [1500, 2048, 333, 1024, 2000] {
            let bytes = pattern(chunk, from: sent)
            #expect(try guest.write(bytes) == chunk)
            #expect(try back.read(limit: 4096) == bytes)
            #expect(try back.write(Array(bytes.prefix(1024))) == min(chunk, 1024))
            #expect(try guest.read(limit: 4096) == Array(bytes.prefix(1024)))
            sent += chunk
        }
        #expect(back.outputConsumer == start &+ UInt32(sent))
        #expect(page.load(Page.outputConsumer) == start &+ UInt32(sent))
        #expect(guest.outputProducer < start, "the producer wrapped")
    }

    @Test("random traffic matches a FIFO model byte for byte", arguments: [0, UInt32.max - 5000])
    func referenceModel(start: UInt32) throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes, startIndex: start)
        var back = try ConsoleBackRing(attaching: page.bytes)
        var random = SplitMix64(seed: 0xC0_750_1E + UInt64(start))
        var output: [UInt8] = []  // bytes in `out`, oldest first
        var input: [UInt8] = []  // bytes in `in`
        var next: UInt8 = 0
        func fresh(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in
                next &+= 1
                return next
            }
        }
        for _ in 0..<4000 {
            let size = Int(random.next() % 700)
            switch random.next() % 4 {
            case 0:
                let bytes = fresh(size)
                let accepted = min(size, 2048 - output.count)
                #expect(try guest.write(bytes) == accepted)
                output += bytes.prefix(accepted)
            case 1:
                let expected = Array(output.prefix(size))
                #expect(try back.read(limit: size) == expected)
                output.removeFirst(expected.count)
            case 2:
                let bytes = fresh(size)
                let accepted = min(size, 1024 - input.count)
                #expect(try back.write(bytes) == accepted)
                input += bytes.prefix(accepted)
            default:
                let expected = Array(input.prefix(size))
                #expect(try guest.read(limit: size) == expected)
                input.removeFirst(expected.count)
            }
            #expect(try back.pendingOutput() == output.count)
            #expect(try back.freeInput() == 1024 - input.count)
        }
    }

    @Test("out_prod past the ring or behind out_cons is a guest fault; nothing is read")
    func hostileOutputProducer() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes, startIndex: 100)
        var back = try ConsoleBackRing(attaching: page.bytes)
        _ = try guest.write(pattern(10))
        _ = try back.read(limit: 4)  // out_cons 104

        let destination = PageBuffer(pages: 1, fill: 0xEE)
        let cases: [(UInt32, XenBusError)] = [
            (104 + 2049, .ringProducerOverflow(producer: 104 + 2049, base: 104, ringSize: 2048)),
            (103, .ringProducerRegressed(producer: 103, consumer: 104)),
            (104 &- 2048, .ringProducerRegressed(producer: 104 &- 2048, consumer: 104)),
            (104 &- 2049, .ringProducerOverflow(producer: 104 &- 2049, base: 104, ringSize: 2048)),
            (
                104 &+ 0x8000_0000,
                .ringProducerOverflow(producer: 104 &+ 0x8000_0000, base: 104, ringSize: 2048)
            ),
        ]
        for (producer, fault) in cases {
            page.store(producer, Page.outputProducer)
            let error = catching { () throws(XenBusError) in
                _ = try back.readOutput(into: destination.bytes)
            }
            #expect(error == fault)
            #expect(error?.isGuestFault == true)
            #expect(destination.array.allSatisfy { $0 == 0xEE }, "no byte copied")
            #expect(back.outputConsumer == 104)
            #expect(page.load(Page.outputConsumer) == 104, "out_cons not republished")
        }
        // Exactly a full ring is legal.
        page.store(104 + 2048, Page.outputProducer)
        #expect(try back.pendingOutput() == 2048)

        // Recovery skips the window unread and the guest carries on from it.
        page.store(5_000_000, Page.outputProducer)
        back.resynchronizeOutput()
        #expect(back.outputConsumer == 5_000_000)
        #expect(page.load(Page.outputConsumer) == 5_000_000)
        #expect(try back.pendingOutput() == 0)
        var repaired = try ConsoleFrontRing(attaching: page.bytes)
        #expect(try repaired.write(pattern(5, from: 40)) == 5)
        #expect(try back.read(limit: 64) == pattern(5, from: 40))
    }

    @Test("in_cons ahead of in_prod or too far behind is a guest fault; nothing is written")
    func hostileInputConsumer() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes, startIndex: 10)
        var back = try ConsoleBackRing(attaching: page.bytes)
        _ = try back.write(pattern(20))  // in_prod 30
        _ = try guest.read(limit: 5)  // in_cons 15
        let before = page.array[0..<1024]
        for consumer: UInt32 in [31, 30 &- 1025, 30 &+ 0x8000_0000] {
            page.store(consumer, Page.inputConsumer)
            let error = catching { () throws(XenBusError) in _ = try back.write([1, 2, 3]) }
            guard case .guestProtocol(let text)? = error else {
                Issue.record("in_cons \(consumer): \(String(describing: error))")
                continue
            }
            #expect(text.contains("in_cons \(consumer)"))
            #expect(error?.isGuestFault == true)
            #expect(page.array[0..<1024] == before, "no byte written")
            #expect(page.load(Page.inputProducer) == 30)
        }
        page.store(30 &- 1024, Page.inputConsumer)
        #expect(try back.freeInput() == 0, "exactly a full ring is legal")

        page.store(31, Page.inputConsumer)
        back.resynchronizeInput()
        #expect(back.inputProducer == 31)
        #expect(page.load(Page.inputProducer) == 31)
        #expect(try back.freeInput() == 1024)
    }

    @Test("the guest rewriting the backend's own indices changes nothing we read")
    func scribbledBackendIndices() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes)
        var back = try ConsoleBackRing(attaching: page.bytes)
        _ = try guest.write(pattern(50))
        _ = try back.read(limit: 20)
        page.store(0, Page.outputConsumer)  // would make us re-read 20 bytes
        page.store(999, Page.inputProducer)
        #expect(try back.read(limit: 100) == pattern(30, from: 20), "each byte once")
        #expect(page.load(Page.outputConsumer) == 50, "our copy is republished")
        #expect(try back.write([7]) == 1)
        #expect(page.load(Page.inputProducer) == 1)
    }

    @Test("a restarted backend attaches where the previous one stopped")
    func reattach() throws {
        let page = PageBuffer(pages: 1)
        var guest = try ConsoleFrontRing(initializing: page.bytes, startIndex: UInt32.max - 3)
        do {
            var first = try ConsoleBackRing(attaching: page.bytes)
            _ = try guest.write(pattern(10))
            #expect(try first.read(limit: 6) == pattern(6))
            _ = try first.write([1, 2])
        }
        _ = try guest.write(pattern(4, from: 10))
        var second = try ConsoleBackRing(attaching: page.bytes)
        #expect(try second.read(limit: 100) == pattern(8, from: 6), "nothing lost or repeated")
        #expect(try second.write([3]) == 1)
        #expect(try guest.read(limit: 10) == [1, 2, 3])
    }

    @Test("buffers that cannot hold xencons_interface are refused")
    func badBuffers() throws {
        let exact = PageBuffer(byteCount: 3088)
        var back = try ConsoleBackRing(attaching: exact.bytes)
        #expect(try back.read(limit: 1) == [])
        let short = PageBuffer(byteCount: 3087)
        #expect(throws: XenBusError.self) { _ = try ConsoleBackRing(attaching: short.bytes) }
        let page = PageBuffer(pages: 1)
        let misaligned = UnsafeMutableRawBufferPointer(rebasing: page.bytes[2...])
        #expect(throws: XenBusError.self) { _ = try ConsoleBackRing(attaching: misaligned) }
        #expect(throws: XenBusError.self) {
            _ = try ConsoleFrontRing(attaching: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
    }

    @Test("the console page through a grant mapping")
    func overGrantMapping() throws {
        let grants = FakeGrantTable()
        let grant = grants.grant(from: DomainID(4), pages: 1, writable: true)
        var guest = try ConsoleFrontRing(initializing: grant.bytes)
        let mapping = try grants.map(domain: DomainID(4), refs: grant.refs, writable: true)
        var back = try ConsoleBackRing(mapping: mapping)
        _ = try guest.write(Array("login: ".utf8))
        #expect(try back.read(limit: 64) == Array("login: ".utf8))

        let readOnly = grants.grant(from: DomainID(4), pages: 1, writable: false)
        let roMapping = try grants.map(domain: DomainID(4), refs: readOnly.refs, writable: false)
        #expect(throws: XenBusError.mappingReadOnly) { _ = try ConsoleBackRing(mapping: roMapping) }
    }
}
