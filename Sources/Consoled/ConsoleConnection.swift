import CLinux
import DataPath
import LinuxSystem
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// One client on consoled's socket, served on the worker's thread: its
/// hello, its input (only a writer's reaches the guest), and its output
/// queue, bounded, so a client that stops reading loses its oldest output
/// (counted and told) and holds nobody else back.
final class ConsoleConnection: DataPathEndpoint {
    let descriptor: FileDescriptor
    private unowned let server: ConsoleServer
    var endpointID: EndpointID?
    let peerPID: Int32
    let peerUID: UInt32
    /// `user (uid U, pid P) from ORIGIN`, for logs and `who`.
    private(set) var identity: String
    private(set) var attachedAt = ""
    private(set) var session: ConsoleSession?
    private(set) var mode: ConsoleAccessMode = .spy
    private var raw = false
    private var decoder = ConsoleFrameDecoder()
    private var filter = EscapeFilter()
    private var filtered: [UInt8] = []
    private var outbox: ByteQueue
    private var notices: [[UInt8]] = []
    private var staging: [UInt8] = []
    private var stagingSent = 0
    private var readBuffer: [UInt8]
    private var interest: EventPoll.Events = .readable
    private var readingPaused = false
    private var spyWarned = false
    /// Close once the queued frames are out (a refusal, a closed domain).
    private var finishing = false
    private(set) var isClosed = false
    /// Output bytes this client lost to its full queue.
    private(set) var droppedTotal = 0

    /// Notices queued at most (a client asking `who` without reading loses
    /// the oldest).
    static let maximumNotices = 32

    init(descriptor: FileDescriptor, server: ConsoleServer) {
        self.descriptor = descriptor
        self.server = server
        var pid: Int32 = 0
        var uid: UInt32 = UInt32.max
        if clinux_peer_credentials(descriptor.rawValue, &pid, &uid) != 0 {
            pid = 0
            uid = UInt32.max
        }
        peerPID = pid
        peerUID = uid
        identity = "uid \(uid) pid \(pid)"
        outbox = ByteQueue(capacity: server.settings.clientBufferBytes)
        readBuffer = [UInt8](repeating: 0, count: 4096)
        staging.reserveCapacity(ConsoleFrame.maximumPayload + ConsoleFrame.headerSize)
    }

    func serve(budget: Int) throws(XenBusError) -> Bool {
        guard !isClosed else { return false }
        if !readingPaused && !finishing {
            readSome()
        } else {
            // Not reading, yet woken: epoll reports a hang-up even without
            // read interest, so look whether the peer is gone.
            checkHangUp()
        }
        if !isClosed { flush() }
        return false
    }

    // MARK: reading

    private func readSome() {
        // A writer reads no more than the guest's input queue can take, so
        // nothing it sends is dropped; a full queue pauses reading.
        var limit = readBuffer.count
        if let session, mode == .write {
            limit = min(limit, session.inputRoom)
            if limit == 0 {
                pauseReading()
                return
            }
        }
        let result = readBuffer.withUnsafeMutableBytes { raw in
            retryingSyscall { Glibc.read(descriptor.rawValue, raw.baseAddress, limit) }
        }
        switch result {
        case .success(0):
            server.close(self, reason: "")
        case .success(let count):
            decoder.feed(readBuffer[0..<count])
            do throws(ConsoledError) {
                while !isClosed, !finishing, let frame = try decoder.next() { handle(frame) }
            } catch {
                refuse("\(error)")
            }
        case .failure(let errno):
            if errno == .resourceTemporarilyUnavailable || errno == .wouldBlock { return }
            server.close(self, reason: "read: \(errno)")
        }
    }

    private func checkHangUp() {
        var byte: UInt8 = 0
        let result = retryingSyscall {
            recv(descriptor.rawValue, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        }
        switch result {
        case .success(0): server.close(self, reason: "")
        case .success: return
        case .failure(let errno):
            if errno == .resourceTemporarilyUnavailable || errno == .wouldBlock { return }
            server.close(self, reason: "read: \(errno)")
        }
    }

    private func handle(_ frame: ConsoleFrame) {
        switch frame {
        case .hello(let hello):
            guard session == nil else { return refuse("a second hello") }
            raw = hello.raw
            let user = ConsoleText.printable(hello.user, limit: 32)
            let origin = ConsoleText.printable(hello.origin, limit: 64)
            identity =
                "\(user.isEmpty ? "?" : user) (uid \(peerUID), pid \(peerPID))"
                + (origin.isEmpty ? "" : " from \(origin)")
            server.attach(self, hello: hello)
        case .input(let bytes):
            guard let session else { return refuse("input before the hello") }
            if mode == .write {
                session.queueInput(bytes)
            } else if !spyWarned {
                spyWarned = true
                sendNotice("you are a spy: your input is ignored (Ctrl-] f forces write access)")
            }
        case .command(let command):
            guard let session else { return refuse("a command before the hello") }
            switch command {
            case .who: sendNotice(session.whoList(for: self))
            case .replay(let lines): session.replay(min(lines, 10_000), to: self)
            case .force: session.force(self)
            case .spy: session.yieldWrite(self)
            }
        case .accepted, .refused, .output, .notice, .mode:
            refuse("a server frame from a client")
        }
    }

    func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
        if let endpointID { server.worker.wake(endpointID) }
    }

    // MARK: writing

    /// The session accepted this client.
    func accepted(_ session: ConsoleSession, mode: ConsoleAccessMode) {
        self.session = session
        self.mode = mode
        attachedAt = String(
            decoding: logTimestamp(server.clock.wallSeconds()).dropLast(), as: UTF8.self)
        queueFrame(
            .accepted(
                ConsoleAccepted(
                    domainName: session.name, domainID: UInt32(session.domain.rawValue), mode: mode)
            ))
    }

    func changeMode(_ mode: ConsoleAccessMode) {
        self.mode = mode
        if mode == .spy { spyWarned = false }
        queueFrame(.mode(mode))
        if mode == .write { resumeReading() }
    }

    /// Queues guest output (filtered unless the client asked for raw).
    func sendOutput(_ bytes: UnsafeRawBufferPointer) {
        guard !isClosed, !bytes.isEmpty else { return }
        if raw {
            droppedTotal += outbox.append(bytes)
        } else {
            filtered.removeAll(keepingCapacity: true)
            filter.filter(bytes, into: &filtered)
            droppedTotal += outbox.append(filtered)
        }
        flush()
    }

    func sendNotice(_ text: String) {
        queueFrame(.notice(text))
    }

    /// Refuses the client: the reason goes out, then the connection closes.
    func refuse(_ reason: String) {
        queueFrame(.refused(reason))
        finish()
    }

    /// Closes once what is queued is out (or the client stops reading).
    func finish() {
        finishing = true
        session = nil
        flush()
    }

    private func queueFrame(_ frame: ConsoleFrame) {
        guard !isClosed else { return }
        if notices.count >= Self.maximumNotices { notices.removeFirst() }
        notices.append(frame.encoded)
        flush()
    }

    private func flush() {
        while !isClosed {
            if stagingSent == staging.count && !stage() { break }
            let result = staging.withUnsafeBytes { raw -> Result<Int, Errno> in
                guard let base = raw.baseAddress else { return .success(0) }
                return retryingSyscall {
                    send(
                        descriptor.rawValue, base + stagingSent, raw.count - stagingSent,
                        Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                }
            }
            switch result {
            case .success(let sent):
                stagingSent += sent
            case .failure(let errno):
                if errno == .resourceTemporarilyUnavailable || errno == .wouldBlock {
                    if !interest.contains(.writable) { updateInterest(writable: true) }
                    return
                }
                // A peer that hung up mid-write is an ordinary detach.
                let hungUp = errno == .brokenPipe || errno == .connectionReset
                server.close(self, reason: hungUp ? "" : "write: \(errno)")
                return
            }
        }
        if isClosed { return }
        if interest.contains(.writable) { updateInterest(writable: false) }
        if finishing { server.close(self, reason: "") }
    }

    /// Builds the next frame into `staging`: notices first, then a count
    /// of dropped output, then output. False when nothing is queued.
    private func stage() -> Bool {
        staging.removeAll(keepingCapacity: true)
        stagingSent = 0
        if !notices.isEmpty {
            staging.append(contentsOf: notices.removeFirst())
            return true
        }
        let dropped = outbox.takeDropped()
        if dropped > 0 {
            staging.append(
                contentsOf: ConsoleFrame.notice(
                    "\(dropped) bytes of output dropped: this client read too slowly"
                ).encoded)
            return true
        }
        guard !outbox.isEmpty else { return false }
        let length = min(outbox.count, ConsoleFrame.maximumPayload)
        staging.append(contentsOf: ConsoleFrame.header(type: UInt8(ascii: "O"), length: length))
        var remaining = length
        while remaining > 0 {
            outbox.withContiguousFront { bytes in
                let take = min(bytes.count, remaining)
                staging.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
                remaining -= take
                return take
            }
        }
        return true
    }

    private func updateInterest(writable: Bool? = nil) {
        var events: EventPoll.Events = []
        if !readingPaused { events.insert(.readable) }
        if writable ?? interest.contains(.writable) { events.insert(.writable) }
        guard events != interest, let endpointID else {
            interest = events
            return
        }
        interest = events
        do throws(XenBusError) {
            try server.worker.setEvents(events, for: endpointID)
        } catch {
            server.close(self, reason: "epoll: \(error)")
        }
    }

    /// Marks the connection closed (the server detaches and closes it).
    func markClosed() {
        isClosed = true
        session = nil
    }
}
