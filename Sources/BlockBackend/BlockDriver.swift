import DataPath
import Logging
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// blkback as a xenbus driver: serves every `backend/vbd/<domid>/<devid>`
/// from the file or device xend named (`type`, `params`, `mode`), for
/// Linux blkfront and any frontend of io/blkif.h in the x86_64 or x86_32
/// ABI. One ring per device (`ring-ref`, or `ring-page-order` up to 4 with
/// `ring-refN`), one data-path worker per ring with its own event channel
/// handle, a journal per ring: a blkback restarted while the device is
/// Connected resumes the ring and redoes what its predecessor left
/// unanswered.
public struct BlockDriver: BackendDeviceDriver {
    /// One connected disk: its ring (worker and journal) and the task that
    /// announces a grown backing.
    public final class Connection: Sendable {
        /// The ring's worker and journal.
        public let ring: JournaledRingConnection
        let resizer: Task<Void, Never>

        init(ring: JournaledRingConnection, resizer: Task<Void, Never>) {
            self.ring = ring
            self.resizer = resizer
        }

        /// Whether this connection took over a predecessor's journal.
        public var recoveredJournal: Bool { ring.recoveredJournal }
    }

    /// How often a connected disk's backing size is looked at.
    let resizeInterval: Duration

    public let deviceType = "vbd"
    public let connectTrigger = FrontendConnectTrigger.initialisedOrConnected
    let grants: any GrantTable
    let openEventChannel: @Sendable () throws(XenBusError) -> any EventChannel
    let journalDirectory: String
    let budget: Int
    let engine: BlockEngineKind
    /// Pages of a frontend kept mapped per ring with `feature-persistent`;
    /// nil: the feature is not offered and data moves by grant copy.
    let persistentGrants: Int?
    let log: Logger

    /// `max-ring-page-order` we publish (16 pages, as Linux blkback).
    public static let maxRingPageOrder: UInt32 = 4

    /// - Parameters:
    ///   - grants: maps ring pages and copies data.
    ///   - openEventChannel: opens a new event channel handle (one per worker).
    ///   - journalDirectory: where ring journals live (tmpfs).
    ///   - budget: requests a ring may take per worker round.
    ///   - engine: the I/O engine under each ring.
    ///   - resizeInterval: how often a disk's backing is checked for growth.
    ///   - persistentGrants: offers `feature-persistent` and keeps up to
    ///     this many pages of a frontend that takes it mapped per ring
    ///     (Linux blkback's default); nil does not offer it.
    ///   - logger: where resumed rings are reported.
    public init(
        grants: any GrantTable,
        openEventChannel: @escaping @Sendable () throws(XenBusError) -> any EventChannel,
        journalDirectory: String = RingJournalFile.defaultDirectory, budget: Int = 64,
        engine: BlockEngineKind = .uring, resizeInterval: Duration = .seconds(1),
        persistentGrants: Int? = PersistentGrantCache.linuxBlkbackDefaultCapacity,
        logger: Logger = Logger(label: "blkback")
    ) {
        self.engine = engine
        self.persistentGrants = persistentGrants
        self.resizeInterval = resizeInterval
        self.log = logger
        self.grants = grants
        self.openEventChannel = openEventChannel
        self.journalDirectory = journalDirectory
        self.budget = budget
    }

    /// The disk xend described in the backend directory.
    static func backing(_ device: BackendDeviceContext) async throws -> BlockBacking {
        let type = try await device.requireBackendValue("type")
        let params = try await device.requireBackendValue("params")
        let mode = try await device.requireBackendValue("mode")
        return try BlockBacking(type: type, params: params, mode: mode)
    }

    /// The features blkfront reads (before InitWait): opens the backing
    /// once to learn whether it exists and can discard.
    public func probe(_ device: BackendDeviceContext) async throws -> [BackendNode] {
        let storage = try FileStorage(try await Self.backing(device))
        return Self.features(storage, persistentGrants: persistentGrants != nil)
    }

    /// The feature nodes for a backing.
    public static func features(_ storage: any BlockStorage, persistentGrants: Bool = true)
        -> [BackendNode]
    {
        var nodes: [BackendNode] = []
        // Offered before the frontend connects; used only if it offers it
        // too (its `feature-persistent`), as Linux blkback and blkfront.
        if persistentGrants { nodes.append(BackendNode("feature-persistent", "1")) }
        if !storage.isReadOnly {
            nodes.append(BackendNode("feature-flush-cache", "1"))
            nodes.append(BackendNode("feature-barrier", "1"))
        }
        if let discard = storage.discardSupport {
            nodes += [
                BackendNode("feature-discard", "1"),
                BackendNode("discard-granularity", String(discard.granularity)),
                BackendNode("discard-alignment", String(discard.alignment)),
                BackendNode("discard-secure", discard.secure ? "1" : "0"),
            ]
        }
        nodes += [
            BackendNode("feature-max-indirect-segments", String(Blkif.maxIndirectSegments)),
            BackendNode("max-ring-page-order", String(maxRingPageOrder)),
            // One ring per disk for now (blkfront's default when absent).
            BackendNode("multi-queue-max-queues", "1"),
        ]
        return nodes
    }

    /// The disk's geometry and `info`, published before Connected.
    static func diskNodes(_ storage: any BlockStorage, cdrom: Bool, removable: Bool)
        -> [BackendNode]
    {
        var info: UInt32 = 0
        if storage.isReadOnly { info |= Blkif.infoReadOnly }
        if cdrom { info |= Blkif.infoCDROM | Blkif.infoRemovable }
        if removable { info |= Blkif.infoRemovable }
        return [
            BackendNode("sectors", String(storage.sectorCount)),
            BackendNode("info", String(info)),
            BackendNode("sector-size", String(Blkif.sectorSize)),
            BackendNode("physical-sector-size", String(storage.physicalSectorSize)),
        ]
    }

    public func connect(_ device: BackendDeviceContext) async throws -> BackendConnectResult<
        Connection
    > {
        let storage = try FileStorage(try await Self.backing(device))
        let cdrom = try await device.backendValue("device-type") == "cdrom"
        let removable = try await device.backendValue("removable") == "1"
        let ring = try await device.frontendRing(maxPageOrder: Self.maxRingPageOrder)
        let port = try await device.frontendEventChannel()
        let frontendPersistent = try await device.frontendValue("feature-persistent") == "1"
        let persistent = persistentGrants != nil && frontendPersistent
        let connection: Connection
        switch try await device.frontendProtocol() {
        case .native, .x86Abi64:
            connection = try start(
                device, storage: storage, ring: ring, port: port, abi: "x86_64",
                persistent: persistent,
                BlkifRequest64.self, BlkifResponse64.self)
        case .x86Abi32:
            connection = try start(
                device, storage: storage, ring: ring, port: port, abi: "x86_32",
                persistent: persistent,
                BlkifRequest32.self, BlkifResponse32.self)
        case .arm:
            throw XenBusError.frontendNodeInvalid(
                path: "\(device.frontendPath)/protocol", value: "arm-abi",
                expected: "x86_64-abi or x86_32-abi (this backend runs on x86)")
        }
        return BackendConnectResult(
            connection: connection,
            publish: Self.diskNodes(storage, cdrom: cdrom, removable: removable))
    }

    private func start<Request: BlkifWireRequest, Response: BlkifWireResponse>(
        _ device: BackendDeviceContext, storage: FileStorage, ring: FrontendRing,
        port: EventChannelPort, abi: String, persistent: Bool, _: Request.Type,
        _: Response.Type
    ) throws -> Connection {
        let limits = BlockDiskLimits(
            sectors: storage.sectorCount, readOnly: storage.isReadOnly,
            discard: storage.discardSupport != nil,
            secureDiscard: storage.discardSupport?.secure ?? false)
        let engine = try makeEngine(storage)
        let grower = Grower()
        let ringConnection = try JournaledRingConnection(
            device, grants: grants, openEventChannel: openEventChannel,
            journalDirectory: journalDirectory,
            name: "vbd-\(device.frontendDomain)-\(device.key.deviceID)",
            description: "vbd \(device.key) \(abi)", refs: ring.refs, port: port, budget: budget,
            Request.self, Response.self
        ) { ring, binding, worker in
            let endpoint = BlockEndpoint<Request, Response>(
                ring: ring, engine: engine, limits: limits, grants: grants,
                frontend: device.frontendDomain,
                persistentGrants: persistent ? persistentGrants : nil
            ) { () throws(XenBusError) in try binding.notify() }
            grower.endpoint = endpoint
            // One endpoint, woken by the guest's port and by its completions.
            worker.attach(endpoint, port: binding.port)
            // Edge-triggered: a completion's signal can come after its
            // entry was reaped and drained; level-triggered, that stale
            // count would wake the idle worker for ever.
            if let completions = engine.completionDescriptor {
                try worker.attach(
                    endpoint, descriptor: completions, events: [.readable, .edgeTriggered])
            }
        }
        log.info(
            "vbd \(device.key): \(abi) ring of \(ring.refs.count) pages, data by \(persistent ? "persistent grants" : "grant copy")"
        )
        if device.isResuming {
            // The admin's evidence that a restart was seamless.
            log.info(
                "vbd \(device.key): resumed ring from \(ringConnection.recoveredJournal ? "its journal" : "the shared indices"), \(ringConnection.pendingRedo) requests to redo"
            )
        }
        // The resize watch has a descriptor of its own on the served inode:
        // the storage's may close while the watch is still ending.
        let watched = dup(storage.rawDescriptor)
        let resizer = Task {
            [
                backing = storage.backing, sectors = storage.sectorCount, interval = resizeInterval,
                log
            ] in
            defer { if watched >= 0 { _ = close(watched) } }
            guard watched >= 0 else {
                log.warning("vbd \(device.key): no descriptor to watch \(backing.path)'s size")
                return
            }
            await Self.announceGrowth(
                device, backing: backing, descriptor: watched, sectors: sectors,
                interval: interval, worker: ringConnection.worker, grower: grower, log: log)
        }
        return Connection(ring: ringConnection, resizer: resizer)
    }

    /// Announces a grown backing as Linux blkback does (online resize):
    /// the ring's endpoint takes the new size first (requests up to it are
    /// valid from then on), then `sectors` is rewritten and `state` written
    /// Connected again, which makes a connected blkfront re-read `sectors`
    /// and set the disk's capacity. A backing that shrank is not announced
    /// (reads past its end fail with an I/O error).
    static func announceGrowth(
        _ device: BackendDeviceContext, backing: BlockBacking, descriptor: Int32, sectors: UInt64,
        interval: Duration, worker: DataPathWorker, grower: Grower, log: Logger
    ) async {
        var known = sectors
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { return }
            guard let now = FileStorage.currentSectorCount(of: descriptor, kind: backing.kind),
                now > known
            else { continue }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let posted = worker.post { _ in
                    grower.grow(to: now)
                    done.resume()
                }
                if !posted { done.resume() }
            }
            if worker.isFinished { return }
            do {
                try await device.store.write("\(device.backendPath)/sectors", String(now))
                if try await device.store.read("\(device.backendPath)/state") == "4" {
                    try await device.store.write("\(device.backendPath)/state", "4")
                }
                log.info("vbd \(device.key): \(backing.path) grew from \(known) to \(now) sectors")
                known = now
            } catch {
                log.warning("vbd \(device.key): cannot announce the new size: \(error)")
            }
        }
    }

    /// The engine `self.engine` names for a backing (io_uring falls back to
    /// the synchronous engine where the kernel refuses io_uring).
    func makeEngine(_ storage: FileStorage) throws -> any BlockEngine {
        switch engine {
        case .synchronous: return SynchronousEngine(storage)
        case .uring:
            do {
                return try UringEngine(storage)
            } catch {
                log.warning(
                    "vbd \(storage.backing.path): io_uring refused (\(error)); synchronous I/O")
                return SynchronousEngine(storage)
            }
        }
    }

    public func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        connection.resizer.cancel()
        await connection.ring.disconnect()
    }

    /// Keeps the journal: the device stays Connected and the next blkback
    /// process resumes it.
    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        connection.resizer.cancel()
        await connection.ring.suspend()
    }
}

/// Which ``BlockEngine`` a driver gives its rings.
public enum BlockEngineKind: String, Sendable, CaseIterable {
    /// ``UringEngine``: a ring's requests in flight together.
    case uring
    /// ``SynchronousEngine`` over ``FileStorage``: one request at a time on
    /// the worker thread.
    case synchronous
}

/// The ring's endpoint as the resize task reaches it: set before the worker
/// starts, then used only by jobs posted to the worker (its thread owns the
/// endpoint), which is why the unchecked Sendable holds.
final class Grower: @unchecked Sendable {
    var endpoint: (any BlockGrowable)?

    func grow(to sectors: UInt64) { endpoint?.grow(to: sectors) }
}
