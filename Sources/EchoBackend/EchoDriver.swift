import DataPath
import XenBus

/// The echo backend as a xenbus driver (`backend/echo/<domid>/<devid>`),
/// the smallest complete backend: the template for blkback, netback and
/// consoled. One page ring (`ring-ref`), one event channel
/// (`event-channel`), one data-path worker per connection with an event
/// channel handle of its own, a journal per ring; a backend restarted while
/// the device is Connected resumes the ring where its predecessor left it.
public struct EchoDriver: BackendDeviceDriver {
    /// One connected device: the worker serving its ring and what the ring
    /// needs (the mapping lives as long as the ring in the endpoint).
    public final class Connection: Sendable {
        let worker: DataPathWorker
        let journal: RingJournalFile
        /// Whether this connection took over from a previous process with
        /// its journal.
        public let recoveredJournal: Bool

        init(worker: DataPathWorker, journal: RingJournalFile, recoveredJournal: Bool) {
            self.worker = worker
            self.journal = journal
            self.recoveredJournal = recoveredJournal
        }
    }

    public let deviceType = "echo"
    public let connectTrigger = FrontendConnectTrigger.initialisedOrConnected
    let grants: any GrantTable
    let openEventChannel: @Sendable () throws(XenBusError) -> any EventChannel
    let journalDirectory: String
    let budget: Int

    /// - Parameters:
    ///   - grants: maps the frontend's ring page.
    ///   - openEventChannel: opens a new event channel handle (one per
    ///     worker: a handle has exactly one reader).
    ///   - journalDirectory: where ring journals live (tmpfs).
    ///   - budget: requests a ring may take per worker round.
    public init(
        grants: any GrantTable,
        openEventChannel: @escaping @Sendable () throws(XenBusError) -> any EventChannel,
        journalDirectory: String = RingJournalFile.defaultDirectory, budget: Int = 64
    ) {
        self.grants = grants
        self.openEventChannel = openEventChannel
        self.journalDirectory = journalDirectory
        self.budget = budget
    }

    public func probe(_ device: BackendDeviceContext) async throws -> [BackendNode] {
        [BackendNode("feature-journal", "1")]
    }

    public func connect(_ device: BackendDeviceContext) async throws -> BackendConnectResult<
        Connection
    > {
        let ring = try await device.frontendRing(orderNode: nil)
        let port = try await device.frontendEventChannel()
        let mapping = try grants.map(domain: device.frontendDomain, refs: ring.refs, writable: true)
        let channel = try openEventChannel()
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: device.frontendDomain, remotePort: port)
        let journal = try RingJournalFile(
            directory: journalDirectory,
            name: "echo-\(device.frontendDomain)-\(device.key.deviceID)",
            slots: try RingGeometry(
                bufferSize: mapping.bytes.count, request: EchoRequest.self,
                response: EchoResponse.self
            ).entryCount, requestSize: EchoRequest.wireSize, responseSize: EchoResponse.wireSize,
            resuming: device.isResuming)
        // The frontend's side names the connection: a journal of an earlier
        // ring (the guest reconnected) is not taken for this one.
        let identity = RingJournal.identity(
            "echo \(device.key) refs \(ring.refs.map(\.description).joined(separator: ",")) "
                + "port \(port)")
        let backRing = try JournaledBackRing<EchoRequest, EchoResponse>(
            mapping: mapping, journalFile: journal, identity: identity,
            resuming: device.isResuming)
        let recovered = backRing.recoveredJournal
        let worker = try DataPathWorker(
            name: "echo-\(device.key.deviceID)", eventChannel: channel, budget: budget
        ) { _, error in device.reportFault(error) }
        worker.attach(EchoEndpoint(ring: backRing, binding: binding), port: binding.port)
        try worker.start()
        return BackendConnectResult(
            connection: Connection(worker: worker, journal: journal, recoveredJournal: recovered))
    }

    public func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.worker.stop()
        connection.journal.unlink()
    }

    /// Keeps the journal: the device stays Connected and the next echo
    /// backend process resumes it.
    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.worker.stop()
    }
}
