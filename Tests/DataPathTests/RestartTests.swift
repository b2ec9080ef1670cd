import DataPath
import EchoBackend
import LinuxSystem
import Synchronization
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Drives a frontend by hand (no thread): pushes requests and collects
/// responses, checking each is answered exactly once.
struct ManualFrontend: ~Copyable {
    var ring: FrontRing<EchoRequest, EchoResponse>
    var sent = 0
    var answered: [UInt64: Int] = [:]
    var wrong = 0

    init(_ bytes: UnsafeMutableRawBufferPointer) throws {
        ring = try FrontRing(initializing: bytes)
    }

    mutating func send(_ count: Int) throws {
        for _ in 0..<count where !ring.isFull {
            let id = UInt64(sent)
            try ring.enqueueRequest(EchoRequest(id: id, value: id &+ 100))
            sent += 1
        }
        _ = ring.pushRequests()
    }

    mutating func collect() throws {
        while let response = try ring.nextResponse() {
            answered[response.id, default: 0] += 1
            if response.value != EchoResponse.echo(response.id &+ 100, id: response.id) {
                wrong += 1
            }
        }
    }

    var exactlyOnce: Bool {
        wrong == 0 && answered.count == sent && answered.values.allSatisfy { $0 == 1 }
    }
}

@Suite("ring journal: a killed backend's successor answers every request once")
struct RestartTests {
    /// One step of a backend: take a request, answer one taken, or push.
    enum Step: CaseIterable { case take, answer, push }

    /// Runs a backend for `steps` random steps on `ring`, then abandons it
    /// (as SIGKILL would: nothing is cleaned up, the journal stays).
    static func runUntilKilled(
        _ ring: inout JournaledBackRing<EchoRequest, EchoResponse>, steps: Int,
        random: inout SystemRandomNumberGenerator, taken: inout [(RequestToken, EchoRequest)]
    ) throws {
        for _ in 0..<steps {
            switch Step.allCases.randomElement(using: &random)! {
            case .take:
                if let next = try ring.nextRequest() { taken.append(next) }
            case .answer:
                guard !taken.isEmpty else { continue }
                let (token, request) = taken.remove(
                    at: Int.random(in: 0..<taken.count, using: &random))
                try ring.respond(
                    to: token,
                    with: EchoResponse(
                        id: request.id, value: EchoResponse.echo(request.value, id: request.id)))
            case .push:
                _ = ring.pushResponses()
            }
        }
    }

    /// The successor serves until the ring is empty.
    static func drain(_ ring: inout JournaledBackRing<EchoRequest, EchoResponse>) throws {
        while let (token, request) = try ring.nextRequest() {
            try ring.respond(
                to: token,
                with: EchoResponse(
                    id: request.id, value: EchoResponse.echo(request.value, id: request.id)))
        }
        _ = ring.pushResponses()
    }

    @Test("kills at random points, out-of-order answers, unpushed responses: exactly once")
    func randomKills() throws {
        var random = SystemRandomNumberGenerator()
        for trial in 0..<300 {
            let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { page.deallocate() }
            page.initializeMemory(as: UInt8.self, repeating: 0)
            let journalBytes = RingJournal.byteCount(
                slots: 128, requestSize: EchoRequest.wireSize, responseSize: EchoResponse.wireSize)
            let memory = UnsafeMutableRawBufferPointer.allocate(
                byteCount: journalBytes, alignment: 64)
            defer { memory.deallocate() }
            var front = try ManualFrontend(page)
            let journal = try RingJournal(
                formatting: memory, slots: 128, requestSize: EchoRequest.wireSize,
                responseSize: EchoResponse.wireSize, identity: 7)
            var ring = JournaledBackRing<EchoRequest, EchoResponse>(
                ring: try BackRing(attaching: page), journal: journal)
            try front.send(Int.random(in: 1...300, using: &random))
            // Several generations of backend, each killed part-way.
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                var taken: [(RequestToken, EchoRequest)] = []
                try Self.runUntilKilled(
                    &ring, steps: Int.random(in: 0...400, using: &random), random: &random,
                    taken: &taken)
                try front.collect()
                try front.send(Int.random(in: 0...100, using: &random))
                guard
                    let recovered = RingJournal(
                        recovering: memory, slots: 128, requestSize: EchoRequest.wireSize,
                        responseSize: EchoResponse.wireSize, identity: 7)
                else {
                    Issue.record("trial \(trial): journal not recovered")
                    return
                }
                ring = try JournaledBackRing(resuming: page, keepAlive: nil, journal: recovered)
                let wasRecovered = ring.recoveredJournal
                #expect(wasRecovered)
            }
            try Self.drain(&ring)
            try front.collect()
            let once = front.exactlyOnce
            let (count, sent) = (front.answered.count, front.sent)
            #expect(once, "trial \(trial): \(count) of \(sent)")
            if !once { return }
        }
    }

    @Test("without a journal, a resumed ring re-reads what was not answered")
    func resumeWithoutJournal() throws {
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0)
        var front = try ManualFrontend(page)
        try front.send(10)
        var ring = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(attaching: page), journal: nil)
        // Four answered and published, three taken and lost with the process.
        for _ in 0..<4 {
            let (token, request) = try #require(try ring.nextRequest())
            try ring.respond(
                to: token,
                with: EchoResponse(
                    id: request.id, value: EchoResponse.echo(request.value, id: request.id)))
        }
        _ = ring.pushResponses()
        for _ in 0..<3 { _ = try ring.nextRequest() }
        ring = try JournaledBackRing(resuming: page, keepAlive: nil, journal: nil)
        let wasRecovered = ring.recoveredJournal
        #expect(!wasRecovered)
        try Self.drain(&ring)
        try front.collect()
        let once = front.exactlyOnce
        #expect(once)
    }

    @Test("a journal of another connection, size or a torn header is not trusted")
    func foreignJournal() throws {
        let bytes = RingJournal.byteCount(slots: 32, requestSize: 16, responseSize: 16)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { memory.deallocate() }
        _ = try RingJournal(
            formatting: memory, slots: 32, requestSize: 16, responseSize: 16, identity: 1)
        #expect(
            RingJournal(
                recovering: memory, slots: 32, requestSize: 16, responseSize: 16, identity: 1)
                != nil)
        #expect(
            RingJournal(
                recovering: memory, slots: 32, requestSize: 16, responseSize: 16, identity: 2)
                == nil)
        #expect(
            RingJournal(
                recovering: memory, slots: 16, requestSize: 16, responseSize: 16, identity: 1)
                == nil)
        memory.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
        #expect(
            RingJournal(
                recovering: memory, slots: 32, requestSize: 16, responseSize: 16, identity: 1)
                == nil)
    }

    @Test("a guest that rewrote rsp_prod while the backend was down faults its own ring only")
    func hostileIndicesAtResume() throws {
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0)
        var front = try ManualFrontend(page)
        try front.send(5)
        let journalBytes = RingJournal.byteCount(slots: 128, requestSize: 16, responseSize: 16)
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: journalBytes, alignment: 64)
        defer { memory.deallocate() }
        let journal = try RingJournal(
            formatting: memory, slots: 128, requestSize: 16, responseSize: 16, identity: 3)
        var ring = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(attaching: page), journal: journal)
        for _ in 0..<5 { _ = try ring.nextRequest() }
        // rsp_prod (offset 8) far behind req_cons: more than a ring apart.
        page.storeBytes(of: UInt32(0x8000_0000), toByteOffset: 8, as: UInt32.self)
        let recovered = try #require(
            RingJournal(
                recovering: memory, slots: 128, requestSize: 16, responseSize: 16, identity: 3))
        #expect(throws: XenBusError.self) {
            _ = try JournaledBackRing<EchoRequest, EchoResponse>(
                resuming: page, keepAlive: nil, journal: recovered)
        }
    }

    @Test("the journal file on disk survives its process object: a successor recovers it")
    func journalFile() throws {
        let directory = "/tmp/proxenos-journal-test-\(getpid())"
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0)
        var front = try ManualFrontend(page)
        try front.send(20)
        do {
            let file = try RingJournalFile(
                directory: directory, name: "ring", slots: 128, requestSize: 16, responseSize: 16,
                resuming: false)
            let journal = try RingJournal(
                formatting: file.file.bytes, slots: 128, requestSize: 16, responseSize: 16,
                identity: 9)
            var ring = JournaledBackRing<EchoRequest, EchoResponse>(
                ring: try BackRing(attaching: page), journal: journal)
            for _ in 0..<8 { _ = try ring.nextRequest() }
        }
        let file = try RingJournalFile(
            directory: directory, name: "ring", slots: 128, requestSize: 16, responseSize: 16,
            resuming: true)
        defer { file.unlink() }
        #expect(file.file.existed)
        let journal = try #require(
            RingJournal(
                recovering: file.file.bytes, slots: 128, requestSize: 16, responseSize: 16,
                identity: 9))
        var ring = try JournaledBackRing<EchoRequest, EchoResponse>(
            resuming: page, keepAlive: nil, journal: journal)
        let redo = ring.pendingRedo
        #expect(redo == 8)
        try Self.drain(&ring)
        try front.collect()
        let once = front.exactlyOnce
        #expect(once)
    }
}
