import DataPath
import Logging
import XenBus

/// blkback as a xenbus driver: serves every `backend/vbd/<domid>/<devid>`
/// from the file or device xend named (`type`, `params`, `mode`), for
/// Linux blkfront and any frontend of io/blkif.h in the x86_64 or x86_32
/// ABI. One ring per device (`ring-ref`, or `ring-page-order` up to 4 with
/// `ring-refN`), one data-path worker per ring with its own event channel
/// handle, a journal per ring: a blkback restarted while the device is
/// Connected resumes the ring and redoes what its predecessor left
/// unanswered.
public struct BlockDriver: BackendDeviceDriver {
    /// One connected disk: its worker and journal.
    public final class Connection: Sendable {
        let worker: DataPathWorker
        let journal: RingJournalFile
        /// Whether this connection took over a predecessor's journal.
        public let recoveredJournal: Bool

        init(worker: DataPathWorker, journal: RingJournalFile, recoveredJournal: Bool) {
            self.worker = worker
            self.journal = journal
            self.recoveredJournal = recoveredJournal
        }
    }

    public let deviceType = "vbd"
    public let connectTrigger = FrontendConnectTrigger.initialisedOrConnected
    let grants: any GrantTable
    let openEventChannel: @Sendable () throws(XenBusError) -> any EventChannel
    let journalDirectory: String
    let budget: Int
    let log: Logger

    /// `max-ring-page-order` we publish (16 pages, as Linux blkback).
    public static let maxRingPageOrder: UInt32 = 4

    /// - Parameters:
    ///   - grants: maps ring pages and copies data.
    ///   - openEventChannel: opens a new event channel handle (one per worker).
    ///   - journalDirectory: where ring journals live (tmpfs).
    ///   - budget: requests a ring may take per worker round.
    ///   - logger: where resumed rings are reported.
    public init(
        grants: any GrantTable,
        openEventChannel: @escaping @Sendable () throws(XenBusError) -> any EventChannel,
        journalDirectory: String = RingJournalFile.defaultDirectory, budget: Int = 64,
        logger: Logger = Logger(label: "blkback")
    ) {
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
        return Self.features(storage)
    }

    /// The feature nodes for a backing.
    public static func features(_ storage: any BlockStorage) -> [BackendNode] {
        var nodes: [BackendNode] = []
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
        let connection: Connection
        switch try await device.frontendProtocol() {
        case .native, .x86Abi64:
            connection = try start(
                device, storage: storage, ring: ring, port: port, abi: "x86_64",
                BlkifRequest64.self, BlkifResponse64.self)
        case .x86Abi32:
            connection = try start(
                device, storage: storage, ring: ring, port: port, abi: "x86_32",
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
        port: EventChannelPort, abi: String, _: Request.Type, _: Response.Type
    ) throws -> Connection {
        let mapping = try grants.map(domain: device.frontendDomain, refs: ring.refs, writable: true)
        let channel = try openEventChannel()
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: device.frontendDomain, remotePort: port)
        let geometry = try RingGeometry(
            bufferSize: mapping.bytes.count, request: Request.self, response: Response.self)
        let journal = try RingJournalFile(
            directory: journalDirectory,
            name: "vbd-\(device.frontendDomain)-\(device.key.deviceID)",
            slots: geometry.entryCount, requestSize: Request.wireSize,
            responseSize: Response.wireSize, resuming: device.isResuming)
        // The frontend's side names the connection: a journal of an earlier
        // ring (the guest reconnected) is not taken for this one.
        let identity = RingJournal.identity(
            "vbd \(device.key) \(abi) refs \(ring.refs.map(\.description).joined(separator: ",")) "
                + "port \(port)")
        let backRing = try JournaledBackRing<Request, Response>(
            mapping: mapping, journalFile: journal, identity: identity,
            resuming: device.isResuming)
        let recovered = backRing.recoveredJournal
        if device.isResuming {
            // The admin's evidence that a restart was seamless.
            log.info(
                "vbd \(device.key): resumed ring from \(recovered ? "its journal" : "the shared indices"), \(backRing.pendingRedo) requests to redo"
            )
        }
        let limits = BlockDiskLimits(
            sectors: storage.sectorCount, readOnly: storage.isReadOnly,
            discard: storage.discardSupport != nil,
            secureDiscard: storage.discardSupport?.secure ?? false)
        let worker = try DataPathWorker(
            name: "vbd-\(device.frontendDomain)-\(device.key.deviceID)", eventChannel: channel,
            budget: budget
        ) { _, error in device.reportFault(error) }
        let endpoint = BlockEndpoint<Request, Response>(
            ring: backRing, storage: storage, limits: limits, grants: grants,
            frontend: device.frontendDomain
        ) { () throws(XenBusError) in try binding.notify() }
        worker.attach(endpoint, port: binding.port)
        try worker.start()
        return Connection(worker: worker, journal: journal, recoveredJournal: recovered)
    }

    public func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.worker.stop()
        connection.journal.unlink()
    }

    /// Keeps the journal: the device stays Connected and the next blkback
    /// process resumes it.
    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.worker.stop()
    }
}
