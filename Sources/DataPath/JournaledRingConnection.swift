import XenBus

/// One frontend ring served by a backend the way every journaled backend
/// serves it: the ring's pages mapped, a new event channel handle bound
/// to the frontend's port, the ring's journal file (kept from a
/// predecessor when the device is resuming and the journal belongs to this
/// ring), and a data-path worker of its own whose faults end that device
/// only. The backend supplies the endpoint; ``disconnect()`` and
/// ``suspend()`` are the driver's two ways out.
public final class JournaledRingConnection: Sendable {
    /// The ring's worker.
    public let worker: DataPathWorker
    /// The ring's journal file.
    public let journal: RingJournalFile
    /// Whether this connection took over a predecessor's journal.
    public let recoveredJournal: Bool
    /// Requests the predecessor left unanswered, redone first.
    public let pendingRedo: Int

    /// Maps `refs` of `device`'s frontend, binds `port` on a new handle
    /// from `openEventChannel`, opens the journal `name` in
    /// `journalDirectory` (identity: `description` with the refs and port,
    /// so a reconnected frontend's new ring never takes an old journal),
    /// and starts a worker named `name` with what `attach` adds to it: the
    /// endpoint over the ring, bound to the port (and any descriptor
    /// endpoints it needs). `attach` runs before the worker starts.
    public init<Request: RingDecodable, Response: RingEncodable>(
        _ device: BackendDeviceContext, grants: any GrantTable,
        openEventChannel: @Sendable () throws(XenBusError) -> any EventChannel,
        journalDirectory: String, name: String, description: String, refs: [GrantRef],
        port: EventChannelPort, budget: Int, _: Request.Type, _: Response.Type,
        attach: (
            _ ring: consuming JournaledBackRing<Request, Response>, _ binding: EventChannelBinding,
            _ worker: DataPathWorker
        ) throws -> Void
    ) throws {
        let mapping = try grants.map(domain: device.frontendDomain, refs: refs, writable: true)
        let channel = try openEventChannel()
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: device.frontendDomain, remotePort: port)
        let geometry = try RingGeometry(
            bufferSize: mapping.bytes.count, request: Request.self, response: Response.self)
        let journal = try RingJournalFile(
            directory: journalDirectory, name: name, slots: geometry.entryCount,
            requestSize: Request.wireSize, responseSize: Response.wireSize,
            resuming: device.isResuming)
        let identity = RingJournal.identity(
            "\(description) refs \(refs.map(\.description).joined(separator: ",")) port \(port)")
        let ring = try JournaledBackRing<Request, Response>(
            mapping: mapping, journalFile: journal, identity: identity,
            resuming: device.isResuming)
        recoveredJournal = ring.recoveredJournal
        pendingRedo = ring.pendingRedo
        let worker = try DataPathWorker(
            name: name, eventChannel: channel, budget: budget
        ) { _, error in device.reportFault(error) }
        try attach(ring, binding, worker)
        try worker.start()
        self.worker = worker
        self.journal = journal
    }

    /// The connection ended: stops the worker and removes the journal.
    public func disconnect() async {
        await worker.stop()
        journal.unlink()
    }

    /// The process is going away with the device still Connected: stops
    /// the worker and keeps the journal for the next process.
    public func suspend() async {
        await worker.stop()
    }
}
