import CLinux
import DataPath
import LinuxSystem
import Logging
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// consoled's registry of guest consoles and clients, living on one
/// ``DataPathWorker``: every console ring is an endpoint on the worker's
/// own event channel handle, and the listening socket, each client, a
/// timer (rate limits, the hypervisor's console) and a signalfd (SIGHUP
/// reopens the logs) are descriptor endpoints. There is no second loop and
/// no lock: everything here runs on the worker's thread; other threads
/// reach it with `worker.post`.
public final class ConsoleServer: @unchecked Sendable {
    // @unchecked: the mutable state below is touched only on the worker's
    // thread (and by init before the worker starts); the daemon hands work
    // over with worker.post.

    public let worker: DataPathWorker
    public let settings: ConsoledSettings
    let clock: any ConsoleClock
    let logger: Logger
    let reportInterval: UInt64
    private var sessions: [DomainID: ConsoleSession] = [:]
    private var connections: [ConsoleConnection] = []
    private let listener: FileDescriptor
    private let timer: FileDescriptor
    private var throttled: [ConsoleSession] = []
    private var hypervisor: (any HypervisorConsoleSource)?
    private var hypervisorLog: ConsoleLog?
    private var nextHypervisorPoll: UInt64 = 0
    private var signals: FileDescriptor?
    private let onStopSignal: @Sendable (Int32) -> Void
    private var helpers: [any DataPathEndpoint] = []

    /// Signals the server handles through its signalfd: SIGHUP reopens
    /// the logs, SIGTERM and SIGINT call `onStopSignal`. The daemon blocks
    /// them in every thread with ``blockSignals()`` before starting any.
    public static let handledSignals: [Int32] = [SIGHUP, SIGTERM, SIGINT]

    /// Blocks ``handledSignals`` in the calling thread, and so in every
    /// thread it starts afterwards.
    public static func blockSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in handledSignals { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Sets the server up on `worker` (not yet started): the socket at
    /// `settings.socketPath` (mode 0600 in a 0700 directory), the log
    /// directory, the timer and, with `handleSignals`, the signalfd.
    public init(
        worker: DataPathWorker, settings: ConsoledSettings, clock: any ConsoleClock = SystemClock(),
        logger: Logger, hypervisor: (any HypervisorConsoleSource)? = nil,
        handleSignals: Bool = false, onStopSignal: @escaping @Sendable (Int32) -> Void = { _ in }
    ) throws(ConsoledError) {
        self.worker = worker
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.hypervisor = hypervisor
        self.onStopSignal = onStopSignal
        reportInterval = UInt64(max(0, settings.reportIntervalSeconds) * 1e9)
        let socketDirectory = Self.directory(of: settings.socketPath)
        do throws(Errno) {
            try Files.makeDirectories(socketDirectory, mode: 0o700)
            try Files.makeDirectories(settings.logDirectory, mode: 0o755)
        } catch {
            throw .system(
                operation: "creating \(socketDirectory) and \(settings.logDirectory)", errno: error)
        }
        _ = chmod(socketDirectory, 0o700)
        do throws(SystemCallError) {
            listener = try UnixSocket.listen(path: settings.socketPath, backlog: 32, mode: 0o600)
        } catch {
            throw .system(operation: error.operation, errno: error.errno)
        }
        let flags = clinux_fcntl_int(listener.rawValue, F_GETFL, 0)
        _ = clinux_fcntl_int(listener.rawValue, F_SETFL, flags | O_NONBLOCK)
        let timerFD = clinux_timerfd_create()
        guard timerFD >= 0 else {
            try? listener.close()
            throw .system(operation: "timerfd_create", errno: Errno(rawValue: errno))
        }
        timer = FileDescriptor(rawValue: timerFD)
        if handleSignals {
            let fd = Self.handledSignals.withUnsafeBufferPointer {
                clinux_signalfd($0.baseAddress, Int32($0.count))
            }
            guard fd >= 0 else {
                try? listener.close()
                try? timer.close()
                throw .system(operation: "signalfd", errno: Errno(rawValue: errno))
            }
            signals = FileDescriptor(rawValue: fd)
        }
        do throws(XenBusError) {
            let accepting = HelperEndpoint { [unowned self] in acceptClients() }
            let ticking = HelperEndpoint { [unowned self] in timerFired() }
            helpers = [accepting, ticking]
            try worker.attach(accepting, descriptor: listener)
            try worker.attach(ticking, descriptor: timer)
            if let signals {
                let handler = HelperEndpoint { [unowned self] in signalled() }
                helpers.append(handler)
                try worker.attach(handler, descriptor: signals)
            }
        } catch {
            try? listener.close()
            try? timer.close()
            try? signals?.close()
            throw .xen("consoled: attaching to its worker: \(error)")
        }
        if hypervisor != nil {
            hypervisorLog = ConsoleLog(
                path: "\(settings.logDirectory)/hypervisor.log",
                maximumBytes: settings.logMaximumBytes, keep: settings.logKeep, clock: clock)
        }
    }

    deinit {
        try? listener.close()
        try? timer.close()
        try? signals?.close()
        for connection in connections { try? connection.descriptor.close() }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The log file of a guest: `guest-NAME.log`, the name reduced to
    /// letters, digits, `.`, `_` and `-` (a name is the admin's, but a
    /// path must not come out of it).
    public static func logFileName(_ name: String) -> String {
        let safe = String(
            String.UnicodeScalarView(
                name.unicodeScalars.prefix(64).map { scalar in
                    switch scalar {
                    case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return scalar
                    default: return "_"
                    }
                }))
        return "guest-\(safe.hasPrefix(".") ? "_" + safe.dropFirst() : Substring(safe)).log"
    }

    // MARK: domains (worker thread)

    /// The domains served.
    public var domains: [DomainID] { sessions.keys.sorted { $0.rawValue < $1.rawValue } }

    /// Starts serving a domain's console: the ring in `mapping` (its page,
    /// `out_cons`/`in_prod` adopted as a previous consoled left them), the
    /// port `binding` bound on the worker's handle. The ring is drained at
    /// once. On the worker's thread.
    public func addDomain(
        _ domain: DomainID, name: String, mapping: GrantMapping, binding: EventChannelBinding
    ) throws(ConsoledError) {
        if sessions[domain] != nil { removeDomain(domain, reason: "its console was set up again") }
        let log = ConsoleLog(
            path: "\(settings.logDirectory)/\(Self.logFileName(name))",
            maximumBytes: settings.logMaximumBytes, keep: settings.logKeep, clock: clock)
        let session: ConsoleSession
        do throws(XenBusError) {
            session = try ConsoleSession(
                domain: domain, name: name, mapping: mapping, binding: binding, log: log,
                server: self)
        } catch {
            throw .xen("\(name) (domain \(domain)): \(error)")
        }
        sessions[domain] = session
        log.event("console of \(name) (domain \(domain)) served")
        session.endpointID = worker.attach(session, port: binding.port)
    }

    /// Stops serving a domain: clients are told and closed, the ring
    /// detached, the page unmapped and the port unbound once the last
    /// reference goes (here). On the worker's thread.
    public func removeDomain(_ domain: DomainID, reason: String = "the domain is gone") {
        guard let session = sessions.removeValue(forKey: domain) else { return }
        session.close(reason: reason)
        if let id = session.endpointID { worker.detach(id) }
        throttled.removeAll { $0 === session }
    }

    /// A ring endpoint the worker detached after a fault that is not the
    /// guest's (the event channel failed): the session goes, so a new
    /// introduce can set it up again.
    public func endpointFailed(_ endpoint: EndpointID, _ error: XenBusError) {
        guard let session = sessions.values.first(where: { $0.endpointID == endpoint }) else {
            return
        }
        logger.error("\(session.label): console stopped: \(error)")
        removeDomain(session.domain, reason: "consoled lost the console: \(error)")
    }

    /// Reopens every log (SIGHUP). On the worker's thread.
    public func reopenLogs() {
        for session in sessions.values { session.log.reopen() }
        hypervisorLog?.reopen()
        logger.info("logs reopened")
    }

    /// Statistics of a served domain, for tests and `who`.
    public func counters(_ domain: DomainID) -> (
        out: Int, in: Int, throttles: Int, faults: Int, clients: Int
    )? {
        guard let session = sessions[domain] else { return nil }
        return (
            session.bytesOut, session.bytesIn, session.throttles, session.guestFaults,
            session.clients.count
        )
    }

    // MARK: clients

    private func acceptClients() {
        for _ in 0..<16 {
            let fd = clinux_accept_nonblocking(listener.rawValue)
            if fd < 0 {
                let error = Errno(rawValue: errno)
                if error != .resourceTemporarilyUnavailable && error != .wouldBlock
                    && error != .interrupted
                {
                    logger.warning("accept on \(settings.socketPath): \(error)")
                }
                return
            }
            let connection = ConsoleConnection(
                descriptor: FileDescriptor(rawValue: fd), server: self)
            connections.append(connection)
            do throws(XenBusError) {
                connection.endpointID = try worker.attach(
                    connection, descriptor: connection.descriptor)
            } catch {
                logger.warning("a client cannot be served: \(error)")
                connections.removeLast()
                try? connection.descriptor.close()
                continue
            }
            if connections.count > settings.maximumClients {
                connection.refuse("consoled serves \(settings.maximumClients) clients at most")
            }
        }
    }

    /// A client's hello: attaches it to its domain's console or refuses it.
    func attach(_ connection: ConsoleConnection, hello: ConsoleHello) {
        let wanted = hello.domain
        let session =
            sessions.values.first { $0.name == wanted }
            ?? UInt16(wanted).flatMap { sessions[DomainID($0)] }
        guard let session else {
            let known = sessions.values.map(\.name).sorted().joined(separator: ", ")
            connection.refuse(
                "no console for domain '\(ConsoleText.printable(wanted, limit: 64))'"
                    + (known.isEmpty ? " (consoled serves none)" : " (consoled serves \(known))"))
            return
        }
        let replay = hello.replay < 0 ? settings.replayLines : min(hello.replay, 10_000)
        _ = session.attach(connection, request: hello.request, replay: replay)
    }

    /// Detaches and closes a client.
    func close(_ connection: ConsoleConnection, reason: String) {
        guard !connection.isClosed else { return }
        if let session = connection.session { session.detach(connection, reason: reason) }
        connection.markClosed()
        if let id = connection.endpointID { worker.detach(id) }
        try? connection.descriptor.close()
        connections.removeAll { $0 === connection }
    }

    // MARK: the timer

    /// Wakes a throttled session once it is due.
    func schedule(_ session: ConsoleSession) {
        if !throttled.contains(where: { $0 === session }) { throttled.append(session) }
        armTimer()
    }

    private func armTimer() {
        let now = clock.monotonic()
        var next: UInt64 = throttled.compactMap(\.throttledUntil).min() ?? .max
        if hypervisor != nil {
            if nextHypervisorPoll == 0 { nextHypervisorPoll = now }
            next = min(next, nextHypervisorPoll)
        }
        guard next != .max else { return }
        _ = clinux_timerfd_arm(timer.rawValue, next > now ? next - now : 1)
    }

    private func timerFired() {
        var expirations: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &expirations) { bytes in
            Glibc.read(timer.rawValue, bytes.baseAddress, 8)
        }
        let now = clock.monotonic()
        var waiting: [ConsoleSession] = []
        for session in throttled {
            if let due = session.throttledUntil, due > now {
                waiting.append(session)
            } else if let id = session.endpointID {
                worker.wake(id)
            }
        }
        throttled = waiting
        if hypervisor != nil && now >= nextHypervisorPoll {
            pollHypervisor()
            nextHypervisorPoll = now + UInt64(max(0.05, settings.hypervisorPollSeconds) * 1e9)
        }
        armTimer()
    }

    private func pollHypervisor() {
        guard var source = hypervisor, let log = hypervisorLog else { return }
        do throws(ConsoledError) {
            let bytes = try source.readNew()
            hypervisor = source
            if !bytes.isEmpty { bytes.withUnsafeBytes { log.append($0) } }
        } catch {
            logger.warning("reading the hypervisor's console: \(error); hypervisor.log stops")
            hypervisor = nil
        }
    }

    // MARK: signals

    private func signalled() {
        guard let signals else { return }
        while true {
            let signal = clinux_signalfd_read(signals.rawValue)
            guard signal > 0 else { return }
            if signal == SIGHUP {
                reopenLogs()
            } else {
                onStopSignal(signal)
            }
        }
    }
}

/// A descriptor endpoint that runs one of the server's handlers.
private final class HelperEndpoint: DataPathEndpoint {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }

    func serve(budget: Int) throws(XenBusError) -> Bool {
        body()
        return false
    }
}

/// Where Xen's own console (what `xm dmesg` shows) is read from.
public protocol HypervisorConsoleSource {
    /// What Xen printed since the last call (the whole ring at the first).
    mutating func readNew() throws(ConsoledError) -> [UInt8]
}
