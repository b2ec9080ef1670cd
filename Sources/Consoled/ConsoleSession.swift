import DataPath
import XenBus

/// One guest's console on the worker's thread: its ring and event
/// channel, its log, its replay history, its rate limit and the clients
/// attached to it (one writer at most, any number of spies).
///
/// Output read from the ring goes to the log first (so a consoled killed
/// right after loses nothing it took), then to the history and every
/// client's bounded queue. The ring is read only while the guest's token
/// bucket holds tokens: a flooding guest waits in its own ring, and the
/// server's timer wakes the session when tokens are back.
final class ConsoleSession: DataPathEndpoint {
    let domain: DomainID
    let name: String
    let log: ConsoleLog
    private(set) var history: ReplayHistory
    private var ring: ConsoleBackRing
    private let binding: EventChannelBinding
    private var limiter: RateLimiter
    private var input: ByteQueue
    private let chunk: UnsafeMutableRawBufferPointer
    private unowned let server: ConsoleServer
    /// Set once attached to the worker.
    var endpointID: EndpointID?
    /// Attached clients, in attach order.
    private(set) var clients: [ConsoleConnection] = []
    /// The client whose input reaches the guest.
    private(set) var writer: ConsoleConnection?
    /// When a throttled session is due again (monotonic ns), else nil.
    var throttledUntil: UInt64?
    /// Counters for statistics and tests.
    private(set) var bytesOut = 0
    private(set) var bytesIn = 0
    private(set) var throttles = 0
    private(set) var guestFaults = 0
    private var lastReport: UInt64 = 0

    init(
        domain: DomainID, name: String, mapping: GrantMapping, binding: EventChannelBinding,
        log: ConsoleLog, server: ConsoleServer
    ) throws(XenBusError) {
        self.domain = domain
        self.name = name
        self.log = log
        self.binding = binding
        self.server = server
        let settings = server.settings
        ring = try ConsoleBackRing(mapping: mapping)
        history = ReplayHistory(capacity: settings.historyBytes)
        limiter = RateLimiter(
            rate: settings.rateBytesPerSecond, burst: settings.burstBytes,
            now: server.clock.monotonic())
        input = ByteQueue(capacity: settings.inputBufferBytes)
        chunk = .allocate(byteCount: Int(ConsoleRingLayout.outputSize), alignment: 16)
    }

    deinit { chunk.deallocate() }

    var label: String { "\(name) (domain \(domain))" }

    // MARK: the ring

    func serve(budget: Int) throws(XenBusError) -> Bool {
        var moved = false
        moved = pushInput() || moved
        let now = server.clock.monotonic()
        if let due = throttledUntil, due > now { return false }
        throttledUntil = nil
        var chunks = 0
        while chunks < budget {
            let allowance = limiter.allowance(now: now)
            let pending: Int
            do throws(XenBusError) {
                pending = try ring.pendingOutput()
            } catch {
                try guestFault(error, output: true)
                moved = true
                break
            }
            if pending == 0 { break }
            if allowance == 0 {
                // Held back: the bytes stay in the guest's ring (which
                // then fills, and the guest waits), and the timer wakes us.
                let delay = limiter.delay(until: pending, now: now)
                throttledUntil = now + max(delay, 1_000_000)
                throttles += 1
                server.schedule(self)
                break
            }
            let window = UnsafeMutableRawBufferPointer(
                rebasing: chunk[0..<min(chunk.count, allowance)])
            let count: Int
            do throws(XenBusError) {
                count = try ring.readOutput(into: window)
            } catch {
                try guestFault(error, output: true)
                moved = true
                break
            }
            if count == 0 { break }
            limiter.consume(count)
            bytesOut += count
            moved = true
            chunks += 1
            deliver(UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
        }
        if moved { try binding.notify() }
        return chunks == budget
    }

    /// Moves queued writer input into the guest's `in` ring; returns
    /// whether any moved.
    private func pushInput() -> Bool {
        guard !input.isEmpty else { return false }
        var moved = false
        var failure: XenBusError?
        while !input.isEmpty {
            var written = 0
            input.withContiguousFront { bytes in
                do throws(XenBusError) {
                    written = try ring.writeInput(bytes)
                } catch {
                    failure = error
                }
                return written
            }
            if written == 0 { break }
            bytesIn += written
            moved = true
        }
        if let failure {
            // The guest broke its in_cons: drop the ring's view of input.
            try? guestFault(failure, output: false)
            moved = true
        }
        if input.count < input.capacity { writer?.resumeReading() }
        return moved
    }

    private func guestFault(_ error: XenBusError, output: Bool) throws(XenBusError) {
        guard error.isGuestFault else { throw error }
        guestFaults += 1
        if output { ring.resynchronizeOutput() } else { ring.resynchronizeInput() }
        let now = server.clock.monotonic()
        if lastReport == 0 || now - lastReport > server.reportInterval {
            lastReport = now
            server.logger.warning(
                "\(label): console ring fault: \(error); resynchronised (\(guestFaults) so far)")
            log.event("console ring fault: \(error); resynchronised")
        }
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer) {
        log.append(bytes)
        history.append(bytes)
        for client in clients { client.sendOutput(bytes) }
        reportLogFailures()
    }

    private func reportLogFailures() {
        guard log.droppedBytes > 0 else { return }
        let now = server.clock.monotonic()
        guard lastReport == 0 || now - lastReport > server.reportInterval else { return }
        lastReport = now
        let (bytes, errno) = log.takeFailures()
        server.logger.warning(
            "\(label): \(bytes) bytes not written to \(log.path): \(errno.map { "\($0)" } ?? "?")"
        )
    }

    // MARK: input

    /// Room for writer input.
    var inputRoom: Int { input.capacity - input.count }

    /// Queues writer input (at most ``inputRoom`` bytes: the caller reads
    /// no more than that) and wakes the ring.
    func queueInput(_ bytes: [UInt8]) {
        input.append(bytes.prefix(inputRoom))
        if let endpointID { server.worker.wake(endpointID) }
    }

    // MARK: clients

    /// Attaches a client: replay first, then live output. Returns the mode
    /// it got.
    func attach(_ client: ConsoleConnection, request: ConsoleHello.Request, replay: Int)
        -> ConsoleAccessMode
    {
        let mode: ConsoleAccessMode
        switch request {
        case .spy:
            mode = .spy
        case .write:
            mode = writer == nil ? .write : .spy
        case .force:
            if let old = writer { bump(old, by: client) }
            mode = .write
        }
        clients.append(client)
        if mode == .write { writer = client }
        client.accepted(self, mode: mode)
        let replayed = history.lastLines(replay)
        replayed.withUnsafeBytes { client.sendOutput($0) }
        log.event("attach \(mode == .write ? "read-write" : "spy") by \(client.identity)")
        if request == .write, mode == .spy, let writer {
            client.sendNotice(
                "\(writer.identity) has write access: you are a spy (Ctrl-] f forces write access)")
        }
        return mode
    }

    /// Makes `client` the writer, bumping the current one to spy.
    func force(_ client: ConsoleConnection) {
        guard writer !== client else {
            client.sendNotice("you have write access already")
            return
        }
        if let old = writer { bump(old, by: client) }
        writer = client
        client.changeMode(.write)
        client.sendNotice("you have write access")
        log.event("write access to \(client.identity)")
    }

    /// Gives write access up.
    func yieldWrite(_ client: ConsoleConnection) {
        guard writer === client else {
            client.sendNotice("you are a spy already")
            return
        }
        writer = nil
        client.changeMode(.spy)
        client.sendNotice("you are a spy now; nobody has write access")
        log.event("write access given up by \(client.identity)")
    }

    private func bump(_ old: ConsoleConnection, by new: ConsoleConnection) {
        writer = nil
        old.changeMode(.spy)
        old.sendNotice("\(new.identity) took write access: you are a spy now")
        log.event("bump \(old.identity) to spy by \(new.identity)")
    }

    /// Detaches a client (it hung up or is being closed).
    func detach(_ client: ConsoleConnection, reason: String) {
        guard let index = clients.firstIndex(where: { $0 === client }) else { return }
        clients.remove(at: index)
        if writer === client { writer = nil }
        log.event("detach \(client.identity)\(reason.isEmpty ? "" : ": \(reason)")")
    }

    /// Who is attached, one line each, for the escape menu's `w`.
    func whoList(for asker: ConsoleConnection) -> String {
        var lines = ["\(clients.count) attached to \(label):"]
        for client in clients {
            let role = client === writer ? "rw " : "spy"
            lines.append(
                "  \(role) \(client.identity) since \(client.attachedAt)\(client === asker ? " (you)" : "")"
            )
        }
        return lines.joined(separator: "\r\n")
    }

    /// Replays the last lines to one client.
    func replay(_ lines: Int, to client: ConsoleConnection) {
        let bytes = history.lastLines(lines)
        client.sendNotice("replaying the last \(lines) lines")
        bytes.withUnsafeBytes { client.sendOutput($0) }
    }

    /// The domain went away: every client is told and closed.
    func close(reason: String) {
        log.event("console closed: \(reason)")
        for client in clients {
            client.sendNotice("\(label): \(reason)")
            client.finish()
        }
        clients.removeAll()
        writer = nil
    }
}
