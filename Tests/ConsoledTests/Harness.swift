import Consoled
import DataPath
import LinuxSystem
import Logging
import Synchronization
import SystemPackage
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

func monotonicSeconds() -> Double {
    Double(SystemClock().monotonic()) / 1e9
}

/// Waits up to `seconds` for `condition`.
/// ``eventually(_:_:)`` for async tests: it sleeps between looks instead of
/// blocking its cooperative thread, which the code under test (the daemon's
/// tasks) needs on a two-core host.
func eventuallyAsync(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
    let deadline = monotonicSeconds() + seconds
    while !condition() {
        if monotonicSeconds() > deadline { return false }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return true
}

func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicSeconds() + seconds
    while !condition() {
        if monotonicSeconds() > deadline { return false }
        usleep(2000)
    }
    return true
}

/// A guest's side of its console page: the front ring over a fake grant,
/// and its end of the event channel.
final class FakeGuest: @unchecked Sendable {
    let domain: DomainID
    let grant: FakeGrantTable.Grant
    let channel: FakeEventChannel
    let port: EventChannelPort
    private let ring: Mutex<ConsoleFrontRing>

    init(
        domain: DomainID, grants: FakeGrantTable, events: FakeEventChannelHub,
        startIndex: UInt32 = 0
    )
        throws
    {
        self.domain = domain
        grant = grants.grant(from: domain, pages: 1, writable: true)
        channel = try events.open(domain: domain)
        port = try channel.allocateUnbound(remoteDomain: DomainID(0))
        ring = Mutex(try ConsoleFrontRing(initializing: grant.bytes, startIndex: startIndex))
    }

    /// Writes what fits; returns how many bytes went in, notifying if any.
    @discardableResult
    func write(_ bytes: [UInt8]) throws -> Int {
        let written = try ring.withLock { ring in
            try bytes.withUnsafeBytes { try ring.writeOutput($0) }
        }
        if written > 0 { try channel.notify(port) }
        return written
    }

    /// Writes all of `text`, waiting for room (as a guest kernel does).
    func writeAll(_ text: String, timeout: Double = 10) throws {
        var rest = Array(text.utf8)[...]
        let deadline = monotonicSeconds() + timeout
        while !rest.isEmpty {
            let written = try write(Array(rest.prefix(2048)))
            rest = rest.dropFirst(written)
            if written == 0 {
                if monotonicSeconds() > deadline {
                    throw ConsoledError.xen("guest write timed out")
                }
                usleep(1000)
            }
        }
    }

    /// The output the guest has written and the backend not yet read.
    func unreadOutput() throws -> Int {
        try ring.withLock { ring in
            ConsoleRingLayout.outputSize - UInt32(try ring.freeOutput())
        }.map { Int($0) }
    }

    /// Reads the input the backend put into `in`.
    func readInput() throws -> [UInt8] {
        try ring.withLock { ring in
            var buffer = [UInt8](repeating: 0, count: 1024)
            let count = try buffer.withUnsafeMutableBytes { try ring.readInput(into: $0) }
            return Array(buffer[0..<count])
        }.notifying(channel, port)
    }
}

extension [UInt8] {
    /// Linux's hvc_xen notifies dom0 after it consumed input (room again).
    fileprivate func notifying(_ channel: FakeEventChannel, _ port: EventChannelPort) throws
        -> [UInt8]
    {
        if !isEmpty { try channel.notify(port) }
        return self
    }
}

extension UInt32 {
    fileprivate func map<T>(_ body: (UInt32) -> T) -> T { body(self) }
}

/// consoled's server on a real DataPathWorker over fake Xen devices, with
/// its socket and logs in a temporary directory.
final class Harness: @unchecked Sendable {
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()
    let channel: FakeEventChannel
    let worker: DataPathWorker
    let server: ConsoleServer
    let directory: String
    let settings: ConsoledSettings
    let faults = FaultLog()

    init(configure: (inout ConsoledSettings) -> Void = { _ in }) throws {
        var template = Array("/tmp/consoled-test-XXXXXX".utf8CString)
        guard
            let made = template.withUnsafeMutableBufferPointer({ buffer in
                buffer.baseAddress.flatMap { mkdtemp($0) }
            })
        else {
            throw ConsoledError.system(operation: "mkdtemp", errno: .noSuchFileOrDirectory)
        }
        directory = String(cString: made)
        var settings = ConsoledSettings()
        settings.socketPath = "\(directory)/run/consoled.sock"
        settings.logDirectory = "\(directory)/logs"
        configure(&settings)
        self.settings = settings
        channel = try events.open(domain: DomainID(0))
        let faults = self.faults
        worker = try DataPathWorker(name: "consoled-test", eventChannel: channel) { _, error in
            faults.record("\(error)")
        }
        var logger = Logger(label: "consoled-test")
        logger.logLevel = .critical
        server = try ConsoleServer(worker: worker, settings: settings, logger: logger)
        try worker.start()
    }

    func stop() async {
        await worker.stop()
        _ = system("rm -rf '\(directory)'")
    }

    /// A guest whose console the server serves.
    func addGuest(_ id: UInt16, name: String, startIndex: UInt32 = 0) throws -> FakeGuest {
        let guest = try FakeGuest(
            domain: DomainID(id), grants: grants, events: events, startIndex: startIndex)
        try serve(guest, name: name)
        return guest
    }

    /// Maps and binds a guest's console and hands it to the server, as the
    /// daemon does after an introduce.
    func serve(_ guest: FakeGuest, name: String) throws {
        let mapping = try grants.map(domain: guest.domain, refs: guest.grant.refs, writable: true)
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: guest.domain, remotePort: guest.port)
        let done = Mutex<String?>(nil)
        let server = self.server
        worker.post { _ in
            do throws(ConsoledError) {
                try server.addDomain(guest.domain, name: name, mapping: mapping, binding: binding)
                done.withLock { $0 = "ok" }
            } catch {
                done.withLock { $0 = "\(error)" }
            }
        }
        let finished = eventually { done.withLock { $0 } != nil }
        guard finished, done.withLock({ $0 }) == "ok" else {
            throw ConsoledError.xen("addDomain: \(done.withLock { $0 } ?? "timed out")")
        }
    }

    func removeGuest(_ guest: FakeGuest) {
        let done = Atomic<Bool>(false)
        let server = self.server
        worker.post { _ in
            server.removeDomain(guest.domain)
            done.store(true, ordering: .releasing)
        }
        _ = eventually { done.load(ordering: .acquiring) }
    }

    /// Runs `body` on the worker's thread and returns its result.
    func onWorker<T: Sendable>(_ body: @escaping @Sendable (ConsoleServer) -> T) -> T? {
        let result = Mutex<T?>(nil)
        let server = self.server
        worker.post { _ in
            let value = body(server)
            result.withLock { $0 = value }
        }
        _ = eventually { result.withLock { $0 } != nil }
        return result.withLock { $0 }
    }

    func logText(_ name: String) -> String {
        (try? Files.read("\(settings.logDirectory)/\(ConsoleServer.logFileName(name))")) ?? ""
    }

    func connect(
        _ domain: String, request: ConsoleHello.Request = .write, replay: Int = 20,
        raw: Bool = false,
        user: String = "tester"
    ) throws -> TestClient {
        let client = try TestClient(path: settings.socketPath)
        try client.send(
            .hello(
                ConsoleHello(
                    domain: domain, request: request, replay: replay, raw: raw, user: user,
                    origin: "test")))
        return client
    }
}

/// A client speaking the frame protocol, reading on demand.
final class TestClient: @unchecked Sendable {
    let descriptor: FileDescriptor
    private var decoder = ConsoleFrameDecoder()
    private(set) var output: [UInt8] = []
    private(set) var notices: [String] = []
    private(set) var modes: [ConsoleAccessMode] = []
    private(set) var accepted: ConsoleAccepted?
    private(set) var refused: String?
    private(set) var closed = false

    init(path: String) throws {
        descriptor = try UnixSocket.connect(path: path)
    }

    deinit { try? descriptor.close() }

    var text: String { String(decoding: output, as: UTF8.self) }

    func send(_ frame: ConsoleFrame) throws {
        _ = try descriptor.writeAll(frame.encoded)
    }

    func type(_ text: String) throws { try send(.input(Array(text.utf8))) }

    /// Reads whatever arrives within `seconds`.
    func pump(_ seconds: Double = 0.05) {
        let deadline = monotonicSeconds() + seconds
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !closed {
            let left = deadline - monotonicSeconds()
            if left <= 0 { return }
            var fds = [pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, Int32(left * 1000) + 1) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes {
                read(descriptor.rawValue, $0.baseAddress, $0.count)
            }
            if count <= 0 {
                closed = true
                return
            }
            decoder.feed(buffer[0..<count])
            while let frame = try? decoder.next() {
                switch frame {
                case .output(let bytes): output += bytes
                case .notice(let text): notices.append(text)
                case .mode(let mode): modes.append(mode)
                case .accepted(let value): accepted = value
                case .refused(let text): refused = text
                default: break
                }
            }
        }
    }

    /// Pumps until `condition` holds or `seconds` pass.
    func wait(_ seconds: Double = 5, until condition: (TestClient) -> Bool) -> Bool {
        let deadline = monotonicSeconds() + seconds
        while !condition(self) {
            if monotonicSeconds() > deadline || closed { return condition(self) }
            pump(0.02)
        }
        return true
    }
}

/// Worker faults seen in a test.
final class FaultLog: Sendable {
    private let entries = Mutex<[String]>([])
    func record(_ text: String) { entries.withLock { $0.append(text) } }
    var all: [String] { entries.withLock { $0 } }
}
