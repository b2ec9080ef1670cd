import EchoBackend
import Logging
import XenBus
import XenDevices
import XenStore

/// `proxenos selftest echo-backend`: the echo backend as a process of its
/// own, serving every `backend/echo` device of dom0 on the real xenstore
/// until killed. The restart check kills and respawns it.
public enum EchoBackendProcess {
    public static func run(journalDirectory: String) async throws {
        let client = try XenStoreClient.connectDefault()
        let driver = EchoDriver(
            grants: try LinuxGrantTable(),
            openEventChannel: { () throws(XenBusError) -> any EventChannel in
                try LinuxEventChannel()
            },
            journalDirectory: journalDirectory)
        let bus = BackendBus(
            store: XenStoreBusStore(client: client), driver: driver,
            logger: Logger(label: "echo-backend"))
        try await bus.run()
    }
}
