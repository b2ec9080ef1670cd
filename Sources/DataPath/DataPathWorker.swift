import CLinux
import LinuxSystem
import Synchronization
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// The data-path loop, written once for every backend: one thread, one
/// epoll instance, and an event channel handle of its own.
///
/// The worker waits on its event channel descriptor, a stop eventfd and
/// the descriptors its endpoints add. When ports fire it takes every
/// pending port, unmasks it at once (a notification arriving while the
/// ring is served is queued again, never lost) and marks the endpoint bound
/// to that port ready; then it serves ready endpoints round-robin, one
/// budget each per round (``ReadyQueue``), and looks at its descriptors
/// again between rounds without sleeping while work is left.
///
/// Why a handle per worker: `pending()` hands out whatever port fired on
/// the handle, so threads sharing one handle take each other's ports and a
/// wakeup is lost (the old documented pattern did that). Here the worker
/// that reads a port is the one that serves it. A handle costs one
/// descriptor; the alternative, one handle per process with a thread
/// forwarding ports to workers, would add a thread hop to every
/// notification.
///
/// Thread use: endpoints are attached before ``start()``; after it, the
/// endpoints belong to the worker's thread, which may attach and detach
/// endpoints itself (from inside `serve`, or from a job another thread
/// hands it with ``post(_:)``: a daemon adding a ring for a new domain or a
/// listener accepting a client). ``stop()`` may be called from any task: it
/// never blocks a cooperative thread.
public final class DataPathWorker: @unchecked Sendable {
    // @unchecked: the mutable tables below are touched by the creating
    // thread before start() and by the worker thread after it, never both;
    // what other threads may touch (exit state, counters) is in Mutex and
    // Atomic.

    /// What went wrong, reported once per failing endpoint.
    public typealias FaultHandler = @Sendable (EndpointID, XenBusError) -> Void

    /// Counters, readable from any thread.
    public struct Statistics: Sendable, Equatable {
        /// epoll waits that returned something.
        public var wakeups = 0
        /// Serve calls, all endpoints.
        public var serveCalls = 0
        /// Serve calls that used their whole budget's worth and asked for
        /// more.
        public var budgetExhausted = 0
        /// Ports that fired with no endpoint attached to them.
        public var strayPorts = 0
    }

    public let name: String
    /// The worker's own event channel handle: bind its rings' ports here.
    public let eventChannel: any EventChannel
    /// Work units an endpoint may do per round.
    public let budget: Int

    /// Work handed to the worker's thread by ``post(_:)``.
    public typealias Job = @Sendable (DataPathWorker) -> Void

    private let poll: EventPoll
    private let stopEvent: WakeupEvent
    private let mailboxEvent: WakeupEvent
    private let mailbox = Mutex(Mailbox())
    private let onFault: FaultHandler
    private var endpoints: [(any DataPathEndpoint)?] = []
    /// Slots of detached endpoints, reused by the next attach: a daemon
    /// whose clients come and go keeps a table as large as its busiest
    /// moment, not its history.
    private var freeSlots: [Int] = []
    /// The loop's pthread once it runs (0 before): attach/detach after
    /// start() are legal only on it.
    private let loopThread = Atomic<UInt>(0)
    private var ports: [EventChannelPort: Int] = [:]
    private var descriptors: [Int: FileDescriptor] = [:]
    private var ready = ReadyQueue()
    private var round: [Int] = []
    // Atomics, not a lock: the loop bumps them every round and readers
    // are rare, so a relaxed snapshot is enough.
    private let wakeups = Atomic<Int>(0)
    private let serveCalls = Atomic<Int>(0)
    private let budgetExhausted = Atomic<Int>(0)
    private let strayPorts = Atomic<Int>(0)
    private let exit = Mutex(ExitState())

    private struct Mailbox {
        var jobs: [Job] = []
        var closed = false
    }

    private struct ExitState {
        var started = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private static let stopToken: UInt64 = 0
    private static let eventChannelToken: UInt64 = 1
    private static let mailboxToken: UInt64 = 2
    private static let firstEndpointToken: UInt64 = 3

    /// A worker over `eventChannel`, which must be this worker's alone.
    public init(
        name: String, eventChannel: any EventChannel, budget: Int = 64,
        onFault: @escaping FaultHandler
    ) throws(XenBusError) {
        self.name = name
        self.eventChannel = eventChannel
        self.budget = max(1, budget)
        self.onFault = onFault
        do throws(SystemCallError) {
            poll = try EventPoll()
            stopEvent = try WakeupEvent()
            mailboxEvent = try WakeupEvent()
            try poll.add(stopEvent.descriptor, .readable, token: Self.stopToken)
            try poll.add(mailboxEvent.descriptor, .readable, token: Self.mailboxToken)
            let channel = eventChannel.fileDescriptor
            // Non-blocking: the loop takes pending ports until there are none.
            let flags = clinux_fcntl_int(channel.rawValue, F_GETFL, 0)
            guard flags >= 0, clinux_fcntl_int(channel.rawValue, F_SETFL, flags | O_NONBLOCK) >= 0
            else { throw SystemCallError(operation: "fcntl O_NONBLOCK", Errno(rawValue: errno)) }
            try poll.add(channel, .readable, token: Self.eventChannelToken)
        } catch {
            throw .eventChannel(operation: "worker \(name): \(error.operation)", errno: error.errno)
        }
    }

    /// Serves `endpoint` whenever `port` (bound through ``eventChannel``)
    /// fires. Before ``start()``, or on the worker's thread; an endpoint
    /// attached while the loop runs is served once at once, like every
    /// endpoint at the start (its ring may hold work whose notification
    /// came before it was attached, counted as a stray port).
    @discardableResult
    public func attach(_ endpoint: any DataPathEndpoint, port: EventChannelPort) -> EndpointID {
        let id = add(endpoint)
        ports[port] = id
        return EndpointID(rawValue: id)
    }

    /// Serves `endpoint` whenever `descriptor` reports `events` (level
    /// triggered: while it stays ready, it is served every round). Before
    /// ``start()``, or on the worker's thread (then it is served once at
    /// once). The caller keeps `descriptor` open until it detaches the
    /// endpoint or the worker stops.
    @discardableResult
    public func attach(
        _ endpoint: any DataPathEndpoint, descriptor: FileDescriptor,
        events: EventPoll.Events = .readable
    ) throws(XenBusError) -> EndpointID {
        let id = add(endpoint)
        do throws(SystemCallError) {
            try poll.add(descriptor, events, token: Self.firstEndpointToken + UInt64(id))
        } catch {
            release(id)
            throw .eventChannel(operation: "worker \(name): \(error.operation)", errno: error.errno)
        }
        descriptors[id] = descriptor
        return EndpointID(rawValue: id)
    }

    /// Changes the events a descriptor endpoint waits for (a client
    /// socket asks for `.writable` only while it has output queued). On the
    /// worker's thread, or before ``start()``.
    public func setEvents(_ events: EventPoll.Events, for endpoint: EndpointID)
        throws(XenBusError)
    {
        assert(mayMutate, "DataPathWorker.setEvents off the worker's thread")
        let id = endpoint.rawValue
        guard let descriptor = descriptors[id] else { return }
        do throws(SystemCallError) {
            try poll.modify(descriptor, events, token: Self.firstEndpointToken + UInt64(id))
        } catch {
            throw .eventChannel(operation: "worker \(name): \(error.operation)", errno: error.errno)
        }
    }

    /// Detaches an endpoint without reporting a fault: it is not called
    /// again (not even later in the current round) and its descriptor
    /// leaves the epoll set; the caller closes the descriptor afterwards.
    /// On the worker's thread, or before ``start()``. Detaching an endpoint
    /// already gone does nothing.
    public func detach(_ endpoint: EndpointID) {
        assert(mayMutate, "DataPathWorker.detach off the worker's thread")
        let id = endpoint.rawValue
        guard endpoints.indices.contains(id), endpoints[id] != nil else { return }
        unregister(id)
    }

    /// Marks an endpoint ready, so it is served in the next round (a timer
    /// endpoint ending a rate limit wakes the ring it held back). On the
    /// worker's thread; an endpoint already gone is ignored.
    public func wake(_ endpoint: EndpointID) {
        assert(mayMutate, "DataPathWorker.wake off the worker's thread")
        let id = endpoint.rawValue
        guard endpoints.indices.contains(id), endpoints[id] != nil else { return }
        ready.mark(id)
    }

    /// Hands `job` to the worker's thread, which runs it before its next
    /// round; safe from any thread, never blocks. Jobs run in the order
    /// posted. Returns false, without running it, once the loop has ended;
    /// jobs still queued when the loop ends are dropped unrun (stop is the
    /// end of the worker's work).
    @discardableResult
    public func post(_ job: @escaping Job) -> Bool {
        let queued = mailbox.withLock { box -> Bool in
            guard !box.closed else { return false }
            box.jobs.append(job)
            return true
        }
        if queued { mailboxEvent.signal() }
        return queued
    }

    /// Whether the caller is the running loop's thread.
    public var isWorkerThread: Bool {
        let loop = loopThread.load(ordering: .acquiring)
        return loop != 0 && pthread_equal(pthread_t(loop), pthread_self()) != 0
    }

    /// Table changes are the creating thread's before the start and the
    /// loop's after it.
    private var mayMutate: Bool {
        !exit.withLock { $0.started } || isWorkerThread || isFinished
    }

    private func add(_ endpoint: any DataPathEndpoint) -> Int {
        assert(mayMutate, "DataPathWorker.attach off the worker's thread")
        let id: Int
        if let slot = freeSlots.popLast() {
            endpoints[slot] = endpoint
            id = slot
        } else {
            endpoints.append(endpoint)
            id = endpoints.count - 1
        }
        // Served once as soon as the loop looks (at start, or this round's
        // end when attached from the loop).
        ready.mark(id)
        return id
    }

    private func release(_ id: Int) {
        endpoints[id] = nil
        ready.remove(id)
        freeSlots.append(id)
    }

    private func unregister(_ id: Int) {
        release(id)
        if let descriptor = descriptors.removeValue(forKey: id) { try? poll.remove(descriptor) }
        for (port, owner) in ports where owner == id { ports[port] = nil }
    }

    /// Counters so far.
    public var statistics: Statistics {
        Statistics(
            wakeups: wakeups.load(ordering: .relaxed),
            serveCalls: serveCalls.load(ordering: .relaxed),
            budgetExhausted: budgetExhausted.load(ordering: .relaxed),
            strayPorts: strayPorts.load(ordering: .relaxed))
    }

    /// Whether the loop has ended (stopped, or never able to run).
    public var isFinished: Bool { exit.withLock { $0.finished } }

    /// Starts the thread. Every endpoint is served once at the start, so
    /// requests that were on a ring before the worker ran (a restarted
    /// backend's, or ones whose notification went to a closed port) are
    /// taken without waiting for a notification.
    public func start() throws(XenBusError) {
        exit.withLock { $0.started = true }
        do throws(SystemCallError) {
            try Threads.spawn(name: String(name.prefix(15))) { [self] in run() }
        } catch {
            finish()
            throw .driver("cannot start data-path worker \(name): \(error)")
        }
    }

    /// Stops the loop and waits for the thread to leave it, without
    /// blocking the calling task's thread. Endpoints are not called again.
    public func stop() async {
        stopEvent.signal()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = exit.withLock { state -> Bool in
                if state.finished || !state.started { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: the loop

    private func run() {
        loopThread.store(UInt(pthread_self()), ordering: .releasing)
        var stopping = false
        while !stopping {
            do throws(SystemCallError) {
                let timeout: Int32 = ready.isEmpty ? -1 : 0
                var mail = false
                let count = try poll.wait(timeoutMilliseconds: timeout) { event in
                    switch event.token {
                    case Self.stopToken: stopping = true
                    case Self.eventChannelToken: takePendingPorts()
                    case Self.mailboxToken: mail = true
                    default: ready.mark(Int(event.token - Self.firstEndpointToken))
                    }
                }
                if mail && !stopping { runJobs() }
                if count > 0 { wakeups.add(1, ordering: .relaxed) }
            } catch {
                // epoll itself failing leaves nothing to serve with: every
                // endpoint is reported so its device can close.
                for id in endpoints.indices where endpoints[id] != nil {
                    fail(id, .eventChannel(operation: "worker \(name): epoll", errno: error.errno))
                }
                break
            }
            if stopping { break }
            serveRound()
        }
        finish()
    }

    private func runJobs() {
        mailboxEvent.drain()
        let jobs = mailbox.withLock { box -> [Job] in
            defer { box.jobs.removeAll() }
            return box.jobs
        }
        for job in jobs { job(self) }
    }

    private func takePendingPorts() {
        while true {
            let port: EventChannelPort
            do throws(XenBusError) {
                port = try eventChannel.pending()
            } catch {
                if case .eventChannel(_, let errno) = error,
                    errno == .resourceTemporarilyUnavailable
                {
                    return
                }
                for id in endpoints.indices where endpoints[id] != nil { fail(id, error) }
                return
            }
            guard let id = ports[port] else {
                strayPorts.add(1, ordering: .relaxed)
                try? eventChannel.unmask(port)
                continue
            }
            do throws(XenBusError) {
                try eventChannel.unmask(port)
            } catch {
                fail(id, error)
                continue
            }
            ready.mark(id)
        }
    }

    private func serveRound() {
        ready.takeRound(into: &round)
        var calls = 0
        var exhausted = 0
        for id in round {
            guard let endpoint = endpoints[id] else { continue }
            calls += 1
            do throws(XenBusError) {
                if try endpoint.serve(budget: budget) {
                    exhausted += 1
                    ready.mark(id)
                }
            } catch {
                fail(id, error)
            }
        }
        if calls > 0 {
            serveCalls.add(calls, ordering: .relaxed)
            budgetExhausted.add(exhausted, ordering: .relaxed)
        }
    }

    private func fail(_ id: Int, _ error: XenBusError) {
        guard endpoints[id] != nil else { return }
        unregister(id)
        onFault(EndpointID(rawValue: id), error)
    }

    private func finish() {
        // Closed first: a post() from now on returns false; what was queued
        // is dropped here, on the loop's way out, not run.
        let dropped = mailbox.withLock { box -> [Job] in
            box.closed = true
            defer { box.jobs.removeAll() }
            return box.jobs
        }
        _ = dropped
        let waiters = exit.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.finished = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
