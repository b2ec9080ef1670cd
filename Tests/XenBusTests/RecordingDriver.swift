import Synchronization
import XenBus
import XenBusTesting

/// A blkback-shaped test driver: probe needs `params` and publishes two
/// features; connect reads the ring (up to order 2), event channel and
/// protocol, maps the ring writable, attaches a back ring and binds the
/// channel; disconnect drops it all. Every call is logged.
final class RecordingDriver: BackendDeviceDriver {
    final class Connection: @unchecked Sendable {
        // @unchecked: tests touch it from one task at a time.
        var ring: BackRing<TestRequest, TestResponse>
        let binding: EventChannelBinding
        let abi: FrontendABI
        let pages: Int

        init(
            ring: consuming BackRing<TestRequest, TestResponse>, binding: EventChannelBinding,
            abi: FrontendABI, pages: Int
        ) {
            self.ring = ring
            self.binding = binding
            self.abi = abi
            self.pages = pages
        }
    }

    final class WeakConnection: @unchecked Sendable {
        weak var value: Connection?
    }

    let deviceType: String
    let connectTrigger: FrontendConnectTrigger
    let grants: FakeGrantTable
    let channel: FakeEventChannel
    let log = Mutex<[String]>([])
    private let last = Mutex(WeakConnection())
    private let lastContext = Mutex<BackendDeviceContext?>(nil)

    init(
        deviceType: String = "vbd", trigger: FrontendConnectTrigger = .initialisedOrConnected,
        grants: FakeGrantTable, events: FakeEventChannelHub
    ) throws {
        self.deviceType = deviceType
        self.connectTrigger = trigger
        self.grants = grants
        self.channel = try events.open(domain: DomainID(0))
    }

    var calls: [String] { log.withLock { $0 } }

    /// The live connection, if any (held weakly: the device owns it).
    var connection: Connection? { last.withLock { $0.value } }

    func probe(_ device: BackendDeviceContext) async throws -> [BackendNode] {
        log.withLock { $0.append("probe") }
        _ = try await device.requireBackendValue("params")
        return [BackendNode("feature-flush-cache", "1"), BackendNode("max-ring-page-order", "2")]
    }

    func connect(_ device: BackendDeviceContext) async throws -> BackendConnectResult<Connection> {
        log.withLock { $0.append(device.isResuming ? "resume" : "connect") }
        lastContext.withLock { $0 = device }
        let ring = try await device.frontendRing(maxPageOrder: 2)
        let port = try await device.frontendEventChannel()
        let abi = try await device.frontendProtocol()
        let mapping = try grants.map(domain: device.frontendDomain, refs: ring.refs, writable: true)
        let backRing = try BackRing<TestRequest, TestResponse>(mapping: mapping)
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: device.frontendDomain, remotePort: port)
        let connection = Connection(
            ring: backRing, binding: binding, abi: abi, pages: ring.refs.count)
        last.withLock { $0.value = connection }
        return BackendConnectResult(
            connection: connection,
            publish: [BackendNode("sectors", "2048"), BackendNode("sector-size", "512")])
    }

    /// Reports a fault the way a data-path worker would.
    func reportLastFault(_ error: XenBusError) {
        lastContext.withLock { $0 }?.reportFault(error)
    }

    func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        log.withLock { $0.append("disconnect") }
    }
}
