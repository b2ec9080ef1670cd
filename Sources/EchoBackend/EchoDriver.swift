import DataPath
import XenBus

/// The echo backend as a xenbus driver (`backend/echo/<domid>/<devid>`),
/// the smallest complete backend: the template for blkback, netback and
/// consoled. One page ring (`ring-ref`), one event channel
/// (`event-channel`), one data-path worker per connection with an event
/// channel handle of its own, a journal per ring; a backend restarted while
/// the device is Connected resumes the ring where its predecessor left it.
public struct EchoDriver: BackendDeviceDriver {
    /// One connected device: the worker serving its ring and the ring's
    /// journal (``JournaledRingConnection/recoveredJournal`` says whether it
    /// took over from a previous process).
    public typealias Connection = JournaledRingConnection

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
        let connection = try JournaledRingConnection(
            device, grants: grants, openEventChannel: openEventChannel,
            journalDirectory: journalDirectory,
            name: "echo-\(device.frontendDomain)-\(device.key.deviceID)",
            description: "echo \(device.key)", refs: ring.refs, port: port, budget: budget,
            EchoRequest.self, EchoResponse.self
        ) { ring, binding, worker in
            worker.attach(EchoEndpoint(ring: ring, binding: binding), port: binding.port)
        }
        return BackendConnectResult(connection: connection)
    }

    public func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.disconnect()
    }

    /// Keeps the journal: the device stays Connected and the next echo
    /// backend process resumes it.
    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        await connection.suspend()
    }
}
