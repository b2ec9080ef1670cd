import DataPath
import EchoBackend
import LinuxSystem
import Synchronization
import XenBus
import XenDevices
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `proxenos selftest`: proves the backend runtime on the real Xen of the
/// running dom0. Each check prints one line, `selftest: NAME: ok (...)` or
/// `selftest: NAME: FAILED: ...`; the run fails if any check does.
public struct SelfTest: Sendable {
    /// Requests each echo check sends.
    public var requests: Int
    /// How often the restart check kills the echo backend (SIGKILL).
    public var restarts: Int
    /// The executable that runs `selftest echo-backend` (this one).
    public var executable: String
    /// Where the echo backends keep their ring journals.
    public var journalDirectory: String
    /// Where the echo backend processes log.
    public var backendLog: String

    public init(
        requests: Int = 1_000_000, restarts: Int = 2, executable: String = "/proc/self/exe",
        journalDirectory: String = RingJournalFile.defaultDirectory,
        backendLog: String = "/var/log/proxenos-selftest-backend.log"
    ) {
        self.requests = requests
        self.restarts = restarts
        self.executable = executable
        self.journalDirectory = journalDirectory
        self.backendLog = backendLog
    }

    /// A check's failure, with what was expected.
    struct Failed: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs every check; true when all passed.
    public func run(output: @Sendable (String) -> Void) async -> Bool {
        let checks: [(String, () async throws -> String)] = [
            ("event-channel loopback", eventChannelLoopback),
            ("grant self-map and copy", grantSelfMapAndCopy),
            ("echo ring", echoInProcess),
            ("echo ring across backend restarts", echoAcrossRestarts),
        ]
        var passed = 0
        for (name, check) in checks {
            let started = monotonic()
            do {
                let detail = try await check()
                passed += 1
                output(
                    "selftest: \(name): ok (\(detail); \(format(monotonic() - started)) s)")
            } catch {
                output("selftest: \(name): FAILED: \(error)")
            }
        }
        output("selftest: \(passed) passed, \(checks.count - passed) failed")
        return passed == checks.count
    }

    // MARK: checks

    /// Two handles of dom0, one offering a port to dom0 and one binding it:
    /// a notification each way arrives on the other handle's descriptor,
    /// masked until unmasked.
    func eventChannelLoopback() async throws -> String {
        let offering = try LinuxEventChannel()
        let binding = try LinuxEventChannel()
        let offered = try offering.allocateUnbound(remoteDomain: DomainID(0))
        let local = try binding.bindInterdomain(remoteDomain: DomainID(0), remotePort: offered)
        defer {
            try? binding.unbind(local)
            try? offering.unbind(offered)
        }
        let rounds = 200
        let started = monotonic()
        for _ in 0..<rounds {
            try binding.notify(local)
            guard try waitPending(offering, timeout: 5) == offered else {
                throw Failed("the offered port did not fire for a notification from its peer")
            }
            try offering.unmask(offered)
            try offering.notify(offered)
            guard try waitPending(binding, timeout: 5) == local else {
                throw Failed("the bound port did not fire for a notification from its peer")
            }
            try binding.unmask(local)
        }
        let microseconds = (monotonic() - started) / Double(2 * rounds) * 1e6
        let forwarded = try forwardedNotificationCost(
            offering: offering, offered: offered, binding: binding, local: local, rounds: 100)
        return "ports \(offered) and \(local), \(2 * rounds) notifications, "
            + "\(Int(microseconds)) µs each; through a forwarding thread \(Int(forwarded)) µs"
    }

    /// The design alternative DataPathWorker was measured against: one
    /// handle per process with a thread that takes each pending port and
    /// forwards it to the worker through an eventfd. Returns microseconds
    /// per notification (a one-way trip and its answer, halved, as above).
    func forwardedNotificationCost(
        offering: LinuxEventChannel, offered: EventChannelPort, binding: LinuxEventChannel,
        local: EventChannelPort, rounds: Int
    ) throws -> Double {
        let forward = try WakeupEvent()
        let stop = try WakeupEvent()
        let forwarder = FaultLog()
        try Threads.spawn(name: "selftest-fwd") {
            var fds = [
                pollfd(fd: offering.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0),
                pollfd(fd: stop.descriptor.rawValue, events: Int16(POLLIN), revents: 0),
            ]
            while true {
                guard poll(&fds, 2, 10_000) > 0, fds[1].revents == 0 else { break }
                do {
                    let port = try offering.pending()
                    try offering.unmask(port)
                    forward.signal()
                } catch {
                    forwarder.record("\(error)")
                    break
                }
            }
            forwarder.record("stopped")
        }
        defer { stop.signal() }
        let started = monotonic()
        for _ in 0..<rounds {
            try binding.notify(local)
            var descriptor = pollfd(
                fd: forward.descriptor.rawValue, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 5000) == 1 else {
                throw Failed("no forwarded notification: \(forwarder.first ?? "forwarder running")")
            }
            forward.drain()
            try offering.notify(offered)
            guard try waitPending(binding, timeout: 5) == local else {
                throw Failed("the bound port did not fire for a notification from its peer")
            }
            try binding.unmask(local)
        }
        return (monotonic() - started) / Double(2 * rounds) * 1e6
    }

    /// gntalloc grants two pages to dom0 itself; gntdev maps them (a write
    /// through the map shows in the granted pages) and grant copy moves
    /// bytes both ways, with a segment crossing its page refused alone.
    func grantSelfMapAndCopy() async throws -> String {
        let sharer = try LinuxGrantSharer()
        let pages = try sharer.share(pages: 2, with: DomainID(0), writable: true)
        pages.bytes[5] = 0x5A
        let table = try LinuxGrantTable()
        do {
            let mapping = try table.map(domain: DomainID(0), refs: pages.refs, writable: true)
            guard mapping.bytes[5] == 0x5A else { throw Failed("the map does not show the page") }
            try mapping.writableBytes()[xenPageSize + 1] = 0xA5
            guard pages.bytes[xenPageSize + 1] == 0xA5 else {
                throw Failed("a write through the map did not reach the granted page")
            }
        }
        guard table.unmapFailureCount == 0 else { throw Failed("unmap failed") }
        let local = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
        defer { local.deallocate() }
        local.initializeMemory(as: UInt8.self, repeating: 0x11)
        let statuses = try table.copy(
            [
                GrantCopySegment(
                    .fromGuest, domain: DomainID(0), ref: pages.refs[0], offset: 0, length: 8,
                    localOffset: 0),
                GrantCopySegment(
                    .toGuest, domain: DomainID(0), ref: pages.refs[1], offset: 100, length: 8,
                    localOffset: 32),
                GrantCopySegment(
                    .toGuest, domain: DomainID(0), ref: pages.refs[1], offset: 4090, length: 8,
                    localOffset: 32),
            ], local: local)
        guard statuses == [.okay, .okay, .badCopyArgument] else {
            throw Failed("grant copy statuses \(statuses)")
        }
        guard local[5] == 0x5A, pages.bytes[xenPageSize + 100] == 0x11 else {
            throw Failed("grant copy moved the wrong bytes")
        }
        try persistentAndPrivateCopies(table: table, pages: pages)
        return "refs \(pages.refs.map(\.description).joined(separator: ",")), map, batch copy, "
            + "persistent cache, copy-once reader"
    }

    /// The hot-path tools on real gntdev: the persistent-grant cache maps a
    /// page once and serves it again, evicts (unmaps) past its capacity;
    /// the copy-once reader keeps what it copied when the page changes.
    func persistentAndPrivateCopies(table: LinuxGrantTable, pages: SharedPages) throws {
        let cache = PersistentGrantCache(table: table, domain: DomainID(0), capacity: 1)
        pages.bytes[7] = 0x77
        guard try cache.page(pages.refs[0], writable: false).bytes[7] == 0x77,
            try cache.page(pages.refs[0], writable: false).bytes[7] == 0x77,
            try cache.page(pages.refs[1], writable: true).bytes[5] == pages.bytes[xenPageSize + 5]
        else { throw Failed("the persistent cache shows other bytes than the granted page") }
        guard cache.hits == 1, cache.misses == 2, cache.evictions == 1 else {
            throw Failed(
                "persistent cache hits \(cache.hits) misses \(cache.misses) "
                    + "evictions \(cache.evictions), expected 1, 2, 1")
        }
        cache.removeAll()
        guard table.unmapFailureCount == 0 else { throw Failed("a cached page failed to unmap") }

        let reader = PrivateGrantCopy(table: table, capacity: 2)
        reader.append(domain: DomainID(0), ref: pages.refs[0], offset: 0, length: 64)
        try reader.copy()
        pages.bytes[7] = 0x00
        let seen: UInt8? = reader.withReader { $0.load(UInt8.self, at: 7) }
        guard seen == 0x77 else {
            throw Failed("the copy-once reader saw the page change after its copy (\(seen ?? 0))")
        }
    }

    /// A front ring and a back ring on two threads, through a real grant
    /// (gntalloc → gntdev) and real event channels, the backend on the
    /// DataPath worker with its journal: every request answered once.
    func echoInProcess() async throws -> String {
        let sharer = try LinuxGrantSharer()
        let pages = try sharer.share(pages: 1, with: DomainID(0), writable: true)
        let guestChannel = try LinuxEventChannel()
        let guestPort = try guestChannel.allocateUnbound(remoteDomain: DomainID(0))
        let front = try EchoFrontend(
            initializing: pages.bytes, keepAlive: pages, channel: guestChannel, port: guestPort,
            total: requests)
        let table = try LinuxGrantTable()
        let mapping = try table.map(domain: DomainID(0), refs: pages.refs, writable: true)
        let channel = try LinuxEventChannel()
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: DomainID(0), remotePort: guestPort)
        let journal = try RingJournalFile(
            directory: journalDirectory, name: "selftest-\(getpid())", slots: 128,
            requestSize: EchoRequest.wireSize, responseSize: EchoResponse.wireSize,
            resuming: false)
        defer { journal.unlink() }
        let ring = try JournaledBackRing<EchoRequest, EchoResponse>(
            mapping: mapping, journalFile: journal, identity: 1, resuming: false)
        let faults = FaultLog()
        let worker = try DataPathWorker(name: "selftest-echo", eventChannel: channel) {
            _, error in faults.record("\(error)")
        }
        worker.attach(EchoEndpoint(ring: ring, binding: binding), port: binding.port)
        try worker.start()
        let started = monotonic()
        let outcome = await front.runOnThread()
        let seconds = monotonic() - started
        await worker.stop()
        if let fault = faults.first { throw Failed("backend fault: \(fault)") }
        guard outcome.isClean, outcome.answered == requests else { throw Failed("\(outcome)") }
        let statistics = worker.statistics
        return "\(outcome.answered) requests, \(Int(Double(outcome.answered) / seconds)) per s, "
            + "\(statistics.wakeups) backend wakeups"
    }

    /// The echo backend as its own process on the real xenstore
    /// (`backend/echo/0/<pid>`), killed with SIGKILL `restarts` times while
    /// requests flow; each successor adopts the Connected device, rebinds
    /// the frontend's port, recovers the ring journal and answers what was
    /// in flight: every request is answered exactly once, nothing stalls.
    func echoAcrossRestarts() async throws -> String {
        let client = try XenStoreClient.connectDefault()
        defer { client.close() }
        let device = UInt32(getpid())
        let backend = "/local/domain/0/backend/echo/0/\(device)"
        let frontend = "/local/domain/0/device/echo/\(device)"
        try await client.write("\(frontend)/backend", backend)
        try await client.write("\(frontend)/backend-id", "0")
        try await client.write("\(frontend)/state", "1")
        try await client.write("\(backend)/frontend", frontend)
        try await client.write("\(backend)/frontend-id", "0")
        try await client.write("\(backend)/online", "1")
        try await client.write("\(backend)/state", "1")
        var child = try spawnBackend()
        defer {
            kill(child, SIGTERM)
            reap(child)
        }
        // Removes the device, then the echo directories once no other
        // device is in them (a concurrent selftest keeps its own).
        func cleanUp() async {
            try? await client.remove(backend)
            try? await client.remove(frontend)
            for directory in ["/local/domain/0/backend/echo/0", "/local/domain/0/device/echo"] {
                if (try? await client.directory(directory))?.isEmpty == true {
                    try? await client.remove(directory)
                }
            }
            if (try? await client.directory("/local/domain/0/backend/echo"))?.isEmpty == true {
                try? await client.remove("/local/domain/0/backend/echo")
            }
        }
        do {
            try await waitFor(client, "\(backend)/state", "2", what: "the backend's InitWait")
            let sharer = try LinuxGrantSharer()
            let pages = try sharer.share(pages: 1, with: DomainID(0), writable: true)
            let channel = try LinuxEventChannel()
            let port = try channel.allocateUnbound(remoteDomain: DomainID(0))
            let front = try EchoFrontend(
                initializing: pages.bytes, keepAlive: pages, channel: channel, port: port,
                total: requests)
            front.stallSeconds = 90
            try await client.write("\(frontend)/ring-ref", pages.refs[0].description)
            try await client.write("\(frontend)/event-channel", port.description)
            try await client.write("\(frontend)/state", "3")
            try await waitFor(client, "\(backend)/state", "4", what: "the backend's Connected")
            try await client.write("\(frontend)/state", "4")

            let started = monotonic()
            async let outcome = front.runOnThread()
            var killed = 0
            var killedAt: [Int] = []
            while killed < restarts {
                let goal = requests * (killed + 1) / (restarts + 1)
                while front.progress < goal && front.progress < requests {
                    try await Task.sleep(for: .milliseconds(5))
                }
                if front.progress >= requests { break }
                killedAt.append(front.progress)
                kill(child, SIGKILL)
                reap(child)
                killed += 1
                child = try spawnBackend()
            }
            let result = await outcome
            let seconds = monotonic() - started
            guard result.isClean, result.answered == requests else {
                throw Failed("\(result) (killed at \(killedAt))")
            }
            guard killed == restarts else {
                throw Failed("only \(killed) of \(restarts) restarts happened before the end")
            }
            let state = try await client.readIfPresent("\(backend)/state")
            guard state == "4" else {
                throw Failed("backend state \(state ?? "gone") after the run")
            }
            try await client.write("\(frontend)/state", "6")
            try await waitFor(client, "\(backend)/state", "6", what: "the backend's Closed")
            await cleanUp()
            return "\(result.answered) requests, \(killed) SIGKILLs at \(killedAt), "
                + "\(Int(Double(result.answered) / seconds)) per s"
        } catch {
            await cleanUp()
            throw error
        }
    }

    // MARK: helpers

    private func spawnBackend() throws -> pid_t {
        let spec = ProcessSpec(
            path: executable,
            arguments: [
                "proxenos", "selftest", "echo-backend", "--journal-directory", journalDirectory,
            ],
            environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], streams: .logFile(backendLog))
        switch ProcessSpawner.spawn(spec) {
        case .success(let pid): return pid
        case .failure(let errno): throw Failed("cannot start the echo backend: \(errno)")
        }
    }

    private func reap(_ pid: pid_t) {
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    private func waitFor(
        _ client: XenStoreClient, _ path: String, _ value: String, what: String,
        seconds: Double = 120
    ) async throws {
        let deadline = monotonic() + seconds
        while monotonic() < deadline {
            if try await client.readIfPresent(path) == value { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        let now = (try? await client.readIfPresent(path)) ?? nil
        throw Failed(
            "\(what) (\(path) = \(value)) within \(Int(seconds)) s; it is \(now ?? "absent")")
    }

    private func waitPending(_ channel: LinuxEventChannel, timeout: Int32) throws
        -> EventChannelPort?
    {
        var descriptor = pollfd(
            fd: channel.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeout * 1000) == 1 else { return nil }
        return try channel.pending()
    }
}

/// Faults a worker reported, kept for the check's verdict.
final class FaultLog: Sendable {
    private let faults = Mutex<[String]>([])
    func record(_ text: String) { faults.withLock { $0.append(text) } }
    var first: String? { faults.withLock { $0.first } }
}

func monotonic() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func format(_ seconds: Double) -> String {
    let hundredths = Int((seconds * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}
