import DomainConfig
import Foundation
import InMemoryXenStore
import SeedConfigs
import Synchronization
import SystemPackage
import XenStore

@testable import Toolstack

/// Evaluating the seed talk's configs (``SeedConfigs``) as xm would.
enum Seed {
    static let debian1 = SeedConfigs.debian1
    static let netbsd = SeedConfigs.netbsd
    static let freebsd = SeedConfigs.freebsd

    /// Every generated MAC is 00:16:3e:7f:ff:ff with this generator.
    struct ConstantGenerator: RandomNumberGenerator {
        mutating func next() -> UInt64 { .max }
    }

    static func spec(_ text: String, file: String = "/etc/xen/seed", arguments: [String] = [])
        throws -> DomainSpec
    {
        var generator = ConstantGenerator()
        return try DomainConfigFile.evaluate(
            text, file: file, arguments: try XmCreateArguments(arguments), using: &generator)
    }
}

/// A hypervisor in memory: domains are records whose state tests set.
final class FakeHypervisor: Hypervisor {
    struct Domain {
        var info: DomainInfo
        var creation: DomainCreation
        var image: PVImage?
    }

    struct State {
        var domains: [UInt32: Domain] = [:]
        var nextDomid: UInt32 = 1
        var destroyed: [UInt32] = []
        var failBuild: ToolstackError?
        var savedStreams: [UInt32: [UInt8]] = [:]
    }

    let state = Mutex(State())

    init() {
        state.withLock {
            $0.domains[0] = Domain(
                info: DomainInfo(
                    domid: 0, isRunning: true, totalPages: 262_144, cpuTime: 123_400_000_000,
                    onlineVCPUs: 2),
                creation: DomainCreation(
                    handle: Array(repeating: 0, count: 16), vcpus: 2, maxMemoryKiB: 0))
        }
    }

    func listDomains() throws(ToolstackError) -> [DomainInfo] {
        state.withLock { $0.domains.values.map(\.info).sorted { $0.domid < $1.domid } }
    }

    func createDomain(_ creation: DomainCreation) throws(ToolstackError) -> CreatedDomain {
        state.withLock { state in
            let domid = state.nextDomid
            state.nextDomid += 1
            state.domains[domid] = Domain(
                info: DomainInfo(
                    domid: domid, isPaused: true, maxPages: creation.maxMemoryKiB / 4,
                    onlineVCPUs: creation.vcpus, handle: creation.handle),
                creation: creation)
            return CreatedDomain(domid: domid, storePort: 10 + domid, consolePort: 20 + domid)
        }
    }

    func buildPV(_ domain: CreatedDomain, image: PVImage) throws(ToolstackError) -> RingPages {
        let failure: ToolstackError? = state.withLock { state in
            if let failure = state.failBuild { return failure }
            state.domains[domain.domid]?.image = image
            state.domains[domain.domid]?.info.totalPages = UInt64(image.memoryMiB) * 256
            return nil
        }
        if let failure { throw failure }
        return RingPages(
            storeMFN: 0x1000 + UInt64(domain.domid), consoleMFN: 0x2000 + UInt64(domain.domid))
    }

    func pause(_ domid: UInt32) throws(ToolstackError) {
        try update(domid) { $0.isPaused = true }
    }

    func unpause(_ domid: UInt32) throws(ToolstackError) {
        try update(domid) {
            $0.isPaused = false
            $0.isBlocked = true
        }
    }

    func destroy(_ domid: UInt32) throws(ToolstackError) {
        let found = state.withLock { state in
            guard state.domains.removeValue(forKey: domid) != nil else { return false }
            state.destroyed.append(domid)
            return true
        }
        if !found {
            throw .hypervisor(
                operation: "xc_domain_destroy(\(domid))", errno: .noSuchProcess, detail: "")
        }
    }

    func resume(_ domid: UInt32) throws(ToolstackError) {
        try update(domid) {
            $0.isShutdown = false
            $0.shutdownReason = nil
        }
    }

    func save(_ domid: UInt32, to fd: FileDescriptor, suspend: @escaping @Sendable () -> Bool)
        throws(ToolstackError)
    {
        guard suspend() else {
            throw .hypervisor(operation: "xc_domain_save", errno: nil, detail: "suspend failed")
        }
        let stream = Array("STREAM-\(domid)".utf8)
        do {
            _ = try fd.writeAll(stream)
        } catch {
            throw .system(operation: "write", .ioError)
        }
    }

    func restore(_ domain: CreatedDomain, from fd: FileDescriptor) throws(ToolstackError)
        -> RingPages
    {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
        guard String(decoding: buffer.prefix(count), as: UTF8.self).hasPrefix("STREAM-") else {
            throw .hypervisor(operation: "xc_domain_restore", errno: nil, detail: "bad stream")
        }
        try update(domain.domid) { $0.totalPages = 128 * 256 }
        return RingPages(storeMFN: 0x3000, consoleMFN: 0x4000)
    }

    func hostInfo() throws(ToolstackError) -> HostInfo {
        HostInfo(cpus: 2, totalMemoryMiB: 2048, freeMemoryMiB: 900, xenMajor: 4, xenMinor: 17)
    }

    func consoleRing(clear: Bool) throws(ToolstackError) -> String { "(XEN) hello\n" }

    // MARK: test controls

    func update(_ domid: UInt32, _ change: (inout DomainInfo) -> Void) throws(ToolstackError) {
        let found = state.withLock { state in
            guard state.domains[domid] != nil else { return false }
            change(&state.domains[domid]!.info)
            return true
        }
        if !found {
            throw .hypervisor(operation: "domain \(domid)", errno: .noSuchProcess, detail: "")
        }
    }

    /// The guest stops itself with `reason`.
    func shutDown(_ domid: UInt32, reason: ShutdownReason) {
        try? update(domid) {
            $0.isShutdown = true
            $0.shutdownReason = reason
            $0.isRunning = false
            $0.isBlocked = false
        }
    }

    var domids: [UInt32] { state.withLock { $0.domains.keys.sorted() } }
}

/// An xend over a fake hypervisor and an in-memory xenstored.
struct Harness {
    let store = InMemoryXenStore()
    let hypervisor = FakeHypervisor()
    let client: XenStoreClient
    let xend: Xend

    init(settings: XendSettings = Harness.settings()) throws {
        client = try store.connect()
        xend = Xend(hypervisor: hypervisor, store: client, settings: settings)
    }

    static func settings(backendTimeout: Int = 5, requireMarkers: Bool = true) -> XendSettings {
        var settings = XendSettings()
        settings.backendTimeoutSeconds = backendTimeout
        settings.requireBackendMarkers = requireMarkers
        settings.minimumRestartSeconds = 0
        settings.pollInterval = .milliseconds(10)
        // Never the host's /run: tests that need the marker set their own.
        settings.xenstoreLossMarker = nil
        return settings
    }

    /// A spec whose kernel exists (this test binary).
    static func demoSpec(name: String = "demo", arguments: [String] = []) throws -> DomainSpec {
        let text = """
            kernel = "\(CommandLine.arguments[0])"
            memory = 128
            name = "\(name)"
            extra = "console=hvc0"
            """
        return try Seed.spec(text, arguments: arguments)
    }

    /// Announces backends for vbd and vif (this process's pid) and answers
    /// every new backend device by moving it to InitWait (2).
    func runBackends() throws -> Task<Void, Never> {
        for type in StorePaths.deviceTypes {
            try store.write(StorePaths.backendMarker(type), "\(getpid())")
        }
        let store = self.store
        return Task.detached {
            while !Task.isCancelled {
                for type in StorePaths.deviceTypes {
                    let base = "/local/domain/0/backend/\(type)"
                    for domid in store.children(of: base) ?? [] {
                        for device in store.children(of: "\(base)/\(domid)") ?? [] {
                            let state = "\(base)/\(domid)/\(device)/state"
                            if store.value(at: state) == "1" { try? store.write(state, "2") }
                        }
                    }
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    func response(_ request: XendRequest) async -> XendResponse {
        await xend.handle(request)
    }

    /// Every node path under `root` in the in-memory store.
    func paths(under root: String) -> [String] {
        guard let children = store.children(of: root) else { return [] }
        var result = [root]
        for child in children {
            result += paths(under: root == "/" ? "/\(child)" : "\(root)/\(child)")
        }
        return result
    }
}

/// A temporary directory removed at deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "toolstack-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
