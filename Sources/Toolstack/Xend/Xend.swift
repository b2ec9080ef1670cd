import DomainConfig
import Logging
import SystemPackage
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// xend's tunables.
public struct XendSettings: Sendable {
    /// How long a backend may take to reach InitWait after its device
    /// tree is written.
    public var backendTimeoutSeconds = 60
    /// How long a guest may take to suspend for `xm save`.
    public var suspendTimeoutSeconds = 120
    /// A domain stopping this soon after (re)start is not restarted.
    public var minimumRestartSeconds = LifecyclePolicy.minimumRestartSeconds
    /// Poll interval for state waits.
    public var pollInterval: Duration = .milliseconds(100)
    /// The `script` a vif gets when its config names none.
    public var defaultVifScript = StorePlan.defaultVifScript
    /// Whether a device backend must announce itself before xend writes
    /// device trees of its type (tests turn it off to plan devices).
    public var requireBackendMarkers = true
    /// The file PID 1 writes when xenstored dies (Init's
    /// `ServiceTable.xenstoreLossMarker`); while it exists xend creates,
    /// restores and restarts no domain. nil: never check.
    public var xenstoreLossMarker: String? = "/run/proxenos/xenstore-lost"

    public init() {}
}

/// A domain xend created (or adopted after its own restart).
struct ManagedDomain: Sendable {
    enum Phase: Sendable, Equatable {
        case running
        /// `xm save` is copying it; lifecycle events are ignored.
        case saving
        /// Being destroyed by xend.
        case destroying
        /// Stopped and kept (on_* = preserve, or the renamed half of
        /// rename-restart) until `xm destroy`.
        case preserved
    }

    var domid: UInt32
    /// The config, `uuid` set.
    var spec: DomainSpec
    var uuid: DomainUUID
    /// CLOCK_MONOTONIC seconds at (re)start.
    var createdAt: Double
    var phase: Phase
    /// Device types whose trees were written.
    var deviceTypes: Set<String>
}

/// xend: owns the guests. Builds PV domains, writes their xenstore trees,
/// applies on_poweroff/on_reboot/on_crash, pauses, saves and restores them.
/// An actor: the registry of domains changes only here.
public actor Xend {
    let hypervisor: any Hypervisor
    let store: XenStoreClient
    let settings: XendSettings
    let log: Logger
    var domains: [UInt32: ManagedDomain] = [:]
    /// Names of domains being created, so two creates cannot race.
    var pendingNames: Set<String> = []
    var reconciling = false
    var reconcileAgain = false
    /// Set by a host shutdown (PID 1's `xm shutdown --all --wait --host`):
    /// stopped guests are destroyed, whatever their on_* says, and no
    /// domain is created, restored or restarted any more.
    var hostShuttingDown = false

    public init(
        hypervisor: any Hypervisor, store: XenStoreClient, settings: XendSettings = XendSettings(),
        logger: Logger = Logger(label: "xend")
    ) {
        self.hypervisor = hypervisor
        self.store = store
        self.settings = settings
        self.log = logger
    }

    // MARK: requests

    /// Answers one request; every error becomes an error response.
    public func handle(_ request: XendRequest) async -> XendResponse {
        do {
            switch request {
            case .create(let spec, let skipDevices, let paused):
                let domid = try await create(spec, skipDevices: skipDevices, paused: paused)
                return .created(domid: domid, name: spec.name)
            case .list(let name):
                return .domains(try await list(name))
            case .destroy(let name):
                let (domid, _) = try await resolve(name)
                try await destroy(domid, reason: "destroyed by the admin")
                return .done
            case .shutdown(let name, let reboot, let wait, let timeout):
                return try await shutdown(name, reboot: reboot, wait: wait, timeout: timeout)
            case .shutdownAll(let reboot, let timeout, let host):
                let outcomes = await shutdownAll(
                    reboot: reboot, timeoutSeconds: timeout, host: host)
                return .outcomes(outcomes)
            case .pause(let name):
                let (domid, _) = try await resolve(name)
                try refuseDom0(domid, name, "cannot be paused")
                try hypervisor.pause(domid)
                return .done
            case .unpause(let name):
                let (domid, _) = try await resolve(name)
                try refuseDom0(domid, name, "cannot be unpaused")
                try hypervisor.unpause(domid)
                return .done
            case .save(let name, let path):
                try await save(name, to: path)
                return .done
            case .restore(let path, let paused):
                let (domid, name) = try await restore(from: path, paused: paused)
                return .created(domid: domid, name: name)
            case .info:
                return .info(try await info())
            case .dmesg(let clear):
                return .text(try hypervisor.consoleRing(clear: clear))
            case .blockAttach(let name, let disk):
                try await blockAttach(name, disk: disk)
                return .done
            case .blockDetach(let name, let device, let force):
                try await blockDetach(name, device: device, force: force)
                return .done
            case .blockList(let name):
                return .text(BlockListTable.render(try await blockList(name)))
            }
        } catch let error as ToolstackError {
            log.warning("\(request.sxp.head ?? "request") failed: \(error)")
            return XendResponse(error)
        } catch {
            log.warning("\(request.sxp.head ?? "request") failed: \(error)")
            return XendResponse(Self.storeError(error))
        }
    }

    /// A XenStore error (or anything unexpected) in xend's terms.
    static func storeError(_ error: any Error) -> ToolstackError {
        if let error = error as? ToolstackError { return error }
        return .xenstore("\(error)")
    }

    func refuseDom0(_ domid: UInt32, _ name: String, _ what: String) throws(ToolstackError) {
        if domid == 0 { throw .notAllowed(domain: name, reason: "dom0 \(what)") }
    }

    // MARK: names

    /// A domain named by name or id: xend's domains first, then dom0 and
    /// domains xend does not manage (by their xenstore name), then ids.
    func resolve(_ text: String) async throws -> (UInt32, ManagedDomain?) {
        if let managed = domains.values.first(where: { $0.spec.name == text }) {
            return (managed.domid, managed)
        }
        let infos = try hypervisor.listDomains()
        for info in infos where domains[info.domid] == nil {
            if try await displayName(info.domid) == text { return (info.domid, nil) }
        }
        if let number = UInt32(text), infos.contains(where: { $0.domid == number }) {
            return (number, domains[number])
        }
        throw ToolstackError.noSuchDomain(text)
    }

    /// The name `xm list` shows for a domain xend does not manage.
    func displayName(_ domid: UInt32) async throws -> String {
        if domid == 0 { return "Domain-0" }
        let name = try? await store.readIfPresent("\(StorePaths.domain(domid))/name")
        if let name, !name.isEmpty { return name }
        return "Domain-\(domid)"
    }

    /// Throws if another domain (or a create in progress) has the name.
    func ensureNameFree(_ name: String) async throws {
        if pendingNames.contains(name) {
            throw ToolstackError.notAllowed(
                domain: name, reason: "a domain of that name is being created right now")
        }
        if let (domid, _) = try? await resolve(name) {
            throw ToolstackError.nameInUse(name: name, domid: domid)
        }
    }

    // MARK: list and info

    func list(_ name: String?) async throws -> [DomainSummary] {
        var result: [DomainSummary] = []
        for info in try hypervisor.listDomains() {
            let managed = domains[info.domid]
            var name = managed?.spec.name ?? ""
            if managed == nil { name = try await displayName(info.domid) }
            result.append(
                DomainSummary(
                    name: name, domid: info.domid, memoryMiB: info.memoryMiB,
                    vcpus: info.onlineVCPUs, state: info.state, cpuTime: info.cpuTime,
                    spec: managed?.spec))
        }
        guard let name else { return result }
        let (domid, _) = try await resolve(name)
        return result.filter { $0.domid == domid }
    }

    func info() async throws -> [(String, String)] {
        let host = try hypervisor.hostInfo()
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let caps = host.hardwareCaps.map { word -> String in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: max(0, 8 - hex.count)) + hex
        }.joined(separator: ":")
        return [
            ("host", field(names.nodename)), ("release", field(names.release)),
            ("version", field(names.version)), ("machine", field(names.machine)),
            ("nr_cpus", "\(host.cpus)"), ("nr_nodes", "\(host.nodes)"),
            ("cores_per_socket", "\(host.coresPerSocket)"),
            ("threads_per_core", "\(host.threadsPerCore)"), ("cpu_mhz", "\(host.cpuMHz)"),
            ("hw_caps", caps), ("total_memory", "\(host.totalMemoryMiB)"),
            ("free_memory", "\(host.freeMemoryMiB)"), ("xen_major", "\(host.xenMajor)"),
            ("xen_minor", "\(host.xenMinor)"), ("xen_extra", host.xenExtra),
            ("xen_caps", host.xenCaps), ("xen_changeset", host.xenChangeset),
            ("cc_compiler", host.compiler), ("cc_compile_by", host.compiledBy),
            ("cc_compile_domain", host.compileDomain), ("cc_compile_date", host.compileDate),
            ("xend_config_format", "4"), ("xend_domains", "\(domains.count)"),
        ]
    }

    // MARK: create

    /// Creates and starts a domain; on any failure nothing is left behind.
    /// Refuses during a host shutdown, and throws
    /// ``ToolstackError/xenstoreLost(since:)`` once xenstored has
    /// died: the respawned one has none of the old tree, and a domain
    /// built now would share a host with guests nobody can manage.
    func ensureXenstoreIntact() throws(ToolstackError) {
        if hostShuttingDown { throw .hostShuttingDown }
        guard let path = settings.xenstoreLossMarker, let note = lossNote(path) else { return }
        throw .xenstoreLost(since: note)
    }

    /// The marker's text (trimmed), or nil when there is no marker.
    func lossNote(_ path: String) -> String? {
        guard
            let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        else { return nil }
        defer { try? fd.close() }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = (try? buffer.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        let trimmed = text.split(whereSeparator: { $0 == "\n" }).first.map(String.init) ?? ""
        return trimmed.isEmpty ? "earlier" : trimmed
    }

    func create(_ spec: DomainSpec, skipDevices: Bool, paused: Bool) async throws -> UInt32 {
        try ensureXenstoreIntact()
        try SpecCodec.checkName(spec.name)
        try await ensureNameFree(spec.name)
        pendingNames.insert(spec.name)
        defer { pendingNames.remove(spec.name) }

        var spec = spec
        let uuid: DomainUUID
        if let text = spec.uuid {
            guard let parsed = DomainUUID(parsing: text) else {
                throw ToolstackError.invalidSpec("uuid '\(text)' is not in 8-4-4-4-12 form")
            }
            uuid = parsed
        } else {
            uuid = DomainUUID.random()
        }
        if let other = domains.values.first(where: { $0.uuid == uuid }) {
            throw ToolstackError.notAllowed(
                domain: spec.name, reason: "uuid \(uuid) is already used by '\(other.spec.name)'")
        }
        spec.uuid = uuid.description
        try Self.checkReadable(spec.kernel, role: "kernel")
        if let ramdisk = spec.ramdisk { try Self.checkReadable(ramdisk, role: "ramdisk") }
        let types = try await servedDeviceTypes(for: spec, skipMissing: skipDevices)
        if !types.contains("vbd") { spec.disks = [] }
        if !types.contains("vif") { spec.vifs = [] }
        return try await start(spec, uuid: uuid, deviceTypes: types, paused: paused)
    }

    /// Opens a file for reading to report a missing kernel before a
    /// domain exists.
    static func checkReadable(_ path: String, role: String) throws(ToolstackError) {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            try? fd.close()
        } catch let error as Errno {
            throw .unreadableFile(role: role, path: path, reason: "\(error)")
        } catch {
            throw .unreadableFile(role: role, path: path, reason: "\(error)")
        }
    }

    /// The device types of a spec whose backends run. A missing backend is
    /// an error unless `skipMissing`, which drops those devices.
    func servedDeviceTypes(for spec: DomainSpec, skipMissing: Bool) async throws -> Set<String> {
        var types: Set<String> = []
        let wanted = [("vbd", spec.disks.count), ("vif", spec.vifs.count)]
        for (type, count) in wanted where count > 0 {
            if try await backendRuns(type) {
                types.insert(type)
            } else if skipMissing {
                log.warning(
                    "\(spec.name): no \(type) backend runs; creating it without its \(count) \(type)s"
                )
            } else {
                throw ToolstackError.backendMissing(deviceType: type, count: count)
            }
        }
        return types
    }

    /// Whether a backend announced itself for a device type (a pid that
    /// still exists in the marker node).
    func backendRuns(_ type: String) async throws -> Bool {
        guard settings.requireBackendMarkers else { return true }
        guard let value = try await store.readIfPresent(StorePaths.backendMarker(type)),
            let pid = Int32(value.trimmingSpaces()), pid > 0
        else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Fills a created domain's memory with `load` (build or restore, on its
    /// own thread), publishes its xenstore tree and devices, unpauses it
    /// unless `paused`, and records it. On any failure the domain is
    /// destroyed and the error logged after `failure`. Returns when `load`
    /// finished, on the monotonic clock.
    func populate(
        _ created: CreatedDomain, spec: DomainSpec, uuid: DomainUUID, deviceTypes: Set<String>,
        paused: Bool, failure: String,
        load: @escaping @Sendable () throws(ToolstackError) -> RingPages
    ) async throws -> Double {
        let domid = created.domid
        let loaded: Double
        do {
            let pages = try await offload(load)
            loaded = monotonicSeconds()
            try await publish(
                spec, uuid: uuid, domid: domid,
                rings: StorePlan.Rings(
                    storeMFN: pages.storeMFN, storePort: created.storePort,
                    consoleMFN: pages.consoleMFN, consolePort: created.consolePort),
                deviceTypes: deviceTypes)
            if !paused { try hypervisor.unpause(domid) }
        } catch {
            log.error("\(spec.name): \(failure): \(error); destroying it")
            await rollback(domid, uuid: uuid)
            throw error
        }
        domains[domid] = ManagedDomain(
            domid: domid, spec: spec, uuid: uuid, createdAt: monotonicSeconds(), phase: .running,
            deviceTypes: deviceTypes)
        return loaded
    }

    /// Builds, publishes and starts a domain from a checked spec.
    func start(_ spec: DomainSpec, uuid: DomainUUID, deviceTypes: Set<String>, paused: Bool)
        async throws -> UInt32
    {
        let created = try hypervisor.createDomain(
            DomainCreation(
                handle: uuid.bytes, vcpus: spec.vcpus, cpus: spec.cpus?.sorted,
                maxMemoryKiB: UInt64(spec.maxmem) * 1024))
        let domid = created.domid
        log.info("\(spec.name): created domain \(domid), building it")
        let began = monotonicSeconds()
        let image = PVImage(
            kernel: spec.kernel, ramdisk: spec.ramdisk, cmdline: spec.cmdline,
            memoryMiB: spec.memory, vcpus: spec.vcpus)
        let hypervisor = self.hypervisor
        let built = try await populate(
            created, spec: spec, uuid: uuid, deviceTypes: deviceTypes, paused: paused,
            failure: "domain \(domid) failed to start"
        ) { () throws(ToolstackError) in
            try hypervisor.buildPV(created, image: image)
        }
        let now = monotonicSeconds()
        log.info(
            "\(spec.name): domain \(domid) \(paused ? "built, paused" : "started") (build \(Self.seconds(built - began)) s, xenstore and devices \(Self.seconds(now - built)) s)"
        )
        return domid
    }

    /// Writes a built domain's tree, introduces it to xenstored, writes
    /// its devices and waits for their backends.
    func publish(
        _ spec: DomainSpec, uuid: DomainUUID, domid: UInt32, rings: StorePlan.Rings,
        deviceTypes: Set<String>
    ) async throws {
        let nodes = StorePlan.domainNodes(
            domid: domid, spec: spec, uuid: uuid, rings: rings, startTime: wallClockSeconds(),
            createdAt: monotonicSeconds())
        try await writeNodes(nodes, replacing: StorePlan.cleanupPaths(domid: domid, uuid: uuid))
        try await store.introduceDomain(domid, mfn: rings.storeMFN, eventChannel: rings.storePort)
        let devices = StorePlan.deviceNodes(
            domid: domid, spec: spec, types: deviceTypes, vifScript: settings.defaultVifScript)
        guard !devices.isEmpty else { return }
        try await writeNodes(devices, replacing: [])
        try await waitForBackends(
            StorePlan.backendStatePaths(domid: domid, spec: spec, types: deviceTypes))
    }

    /// Writes nodes in one transaction, removing `replacing` first (stale
    /// trees of an earlier domain with the same id).
    ///
    /// A new node inherits its parent's access list, so a parent's list is
    /// set before its children exist. Within that rule the requests are
    /// pipelined: nodes are written level by level (path depth), every
    /// request of a level in flight at once. One round trip per node made
    /// creating a domain take seconds under emulation; this takes a dozen.
    func writeNodes(_ nodes: [StoreNode], replacing: [String]) async throws {
        let levels = Dictionary(grouping: nodes) { node in
            node.path.utf8.count { $0 == UInt8(ascii: "/") }
        }.sorted { $0.key < $1.key }.map(\.value)
        try await store.transaction { tx in
            try await Self.concurrently(replacing) { try await tx.remove($0) }
            for level in levels {
                try await Self.concurrently(level) { try await tx.write($0.path, $0.value) }
                try await Self.concurrently(level.filter { $0.permissions != nil }) { node in
                    if let permissions = node.permissions {
                        try await tx.setPermissions(node.path, permissions)
                    }
                }
            }
        }
    }

    /// Runs `body` for every item at once and waits for all of them.
    static func concurrently<Item: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Void
    ) async throws {
        guard !items.isEmpty else { return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for item in items { group.addTask { try await body(item) } }
            try await group.waitForAll()
        }
    }

    /// Waits until every backend state node reads InitWait (2) or later.
    func waitForBackends(_ paths: [String]) async throws {
        let deadline = monotonicSeconds() + Double(settings.backendTimeoutSeconds)
        for path in paths {
            while true {
                let value = try await store.readIfPresent(path)
                if let value, let state = Int(value), state >= 2 {
                    guard state <= 4 else {
                        throw ToolstackError.backendTimeout(
                            path: path, seconds: settings.backendTimeoutSeconds)
                    }
                    break
                }
                if monotonicSeconds() > deadline {
                    throw ToolstackError.backendTimeout(
                        path: String(path.dropLast("/state".count)),
                        seconds: settings.backendTimeoutSeconds)
                }
                try await Task.sleep(for: settings.pollInterval)
            }
        }
    }

    /// Undoes a failed start: the domain and every node written for it.
    func rollback(_ domid: UInt32, uuid: DomainUUID?) async {
        do {
            try hypervisor.destroy(domid)
        } catch {
            log.error("rollback: destroying domain \(domid) failed: \(error)")
        }
        await removeNodes(domid: domid, uuid: uuid)
    }

    /// Removes a domain's nodes; errors are logged (the domain is gone
    /// either way and a later cleanup retries).
    func removeNodes(domid: UInt32, uuid: DomainUUID?) async {
        for path in StorePlan.cleanupPaths(domid: domid, uuid: uuid) {
            do {
                try await store.remove(path)
            } catch {
                log.error("removing \(path) failed: \(error)")
            }
        }
    }

    /// Seconds with one decimal, for log lines.
    static func seconds(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    // MARK: destroy

    /// Destroys a domain and removes its nodes and record.
    func destroy(_ domid: UInt32, reason: String) async throws {
        try refuseDom0(domid, "Domain-0", "cannot be destroyed")
        let managed = domains[domid]
        if managed?.phase == .saving {
            throw ToolstackError.notAllowed(
                domain: managed?.spec.name ?? "\(domid)", reason: "it is being saved")
        }
        domains[domid]?.phase = .destroying
        do {
            try hypervisor.destroy(domid)
        } catch {
            // Gone already (it died while we looked) is success.
            if (try? hypervisor.domain(domid)) ?? nil != nil {
                if managed != nil { domains[domid]?.phase = managed?.phase ?? .running }
                throw error
            }
        }
        // The record goes first: the name is free as soon as the domain is.
        if domains[domid]?.phase == .destroying { domains[domid] = nil }
        var uuid = managed?.uuid
        if uuid == nil { uuid = await storedUUID(domid) }
        await removeNodes(domid: domid, uuid: uuid)
        log.info("\(managed?.spec.name ?? "domain \(domid)") (\(domid)) \(reason)")
    }

    /// The UUID in a domain's `vm` node, for domains xend does not manage.
    func storedUUID(_ domid: UInt32) async -> DomainUUID? {
        guard let vm = try? await store.readIfPresent("\(StorePaths.domain(domid))/vm"),
            vm.hasPrefix("/vm/")
        else { return nil }
        return DomainUUID(parsing: String(vm.dropFirst(4)))
    }

    // MARK: shutdown

    func shutdown(_ name: String, reboot: Bool, wait: Bool, timeout: Int) async throws
        -> XendResponse
    {
        let (domid, managed) = try await resolve(name)
        try refuseDom0(domid, name, "is shut down with the appliance's poweroff")
        let label = managed?.spec.name ?? name
        try await store.write(
            "\(StorePaths.domain(domid))/control/shutdown", reboot ? "reboot" : "poweroff")
        log.info("\(label) (\(domid)): \(reboot ? "reboot" : "shutdown") requested")
        guard wait else { return .done }
        let deadline = monotonicSeconds() + Double(timeout)
        while monotonicSeconds() < deadline {
            // Gone from Xen and from xend's registry: the name is free again
            // (a restarted domain has a new id).
            if try hypervisor.domain(domid) == nil && domains[domid] == nil { return .done }
            try await Task.sleep(for: settings.pollInterval)
        }
        try await destroy(domid, reason: "destroyed: it did not shut down within \(timeout) s")
        throw ToolstackError.guestTimeout(
            domid: domid, what: "\(reboot ? "reboot" : "shut down") (it was destroyed)",
            seconds: timeout)
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        var text = Substring(self)
        while let first = text.first, isSpace(first) { text = text.dropFirst() }
        while let last = text.last, isSpace(last) { text = text.dropLast() }
        return String(text)
    }
}
