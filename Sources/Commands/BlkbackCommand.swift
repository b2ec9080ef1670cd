import ArgumentParser
import BlockBackend
import DataPath
import LinuxSystem
import Logging
import Toolstack
import XenBus
import XenDevices
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `blkback`: the PV block backend, a service of its own under PID 1 (a
/// fault in it never takes xend or init along). Serves every
/// `backend/vbd` device of dom0 and announces itself to xend.
struct BlkbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blkback",
        abstract: "Serve guests' virtual block devices (backend/vbd) from files and block devices.",
        discussion: """
            Writes its pid to /proxenos/backend/vbd, where xend looks before it creates \
            domains with disks. A blkback killed while guests do I/O is respawned by PID 1, \
            adopts the Connected devices and redoes what was in flight (ring journals on \
            /run). SIGTERM stops it the same way (devices stay Connected for the next one).
            """)

    @Option(help: "Where ring journals live (tmpfs: they outlive the process, not the host).")
    var journalDirectory = RingJournalFile.defaultDirectory

    @Option(help: "The I/O engine: uring (a ring's requests in flight together) or synchronous.")
    var engine = BlockEngineKind.uring.rawValue

    @Flag(
        inversion: .prefixedNo,
        help:
            "Offer feature-persistent: keep a frontend's data pages mapped and memcpy (else grant copy)."
    )
    var persistentGrants = true

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let log = Logger(label: "blkback")
        // SIGTERM and SIGINT are taken by a thread of their own (blocked
        // here, before any other thread exists, so none inherits them).
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
        let directory = journalDirectory
        let persistent = persistentGrants
        guard let kind = BlockEngineKind(rawValue: engine) else {
            log.error("blkback: --engine \(engine) is not uring or synchronous")
            throw ExitCode(2)
        }
        let blocked = stopSignals
        do {
            try runBlocking {
                let client = try XenStoreClient.connectDefault()
                let driver = BlockDriver(
                    grants: try LinuxGrantTable(),
                    openEventChannel: { () throws(XenBusError) -> any EventChannel in
                        try LinuxEventChannel()
                    },
                    journalDirectory: directory, engine: kind,
                    persistentGrants: persistent
                        ? PersistentGrantCache.linuxBlkbackDefaultCapacity : nil)
                let bus = BackendBus(
                    store: XenStoreBusStore(client: client), driver: driver,
                    logger: Logger(label: "blkback"))
                let serving = Task { try await bus.run() }
                let marker = StorePaths.backendMarker("vbd")
                try await client.write(marker, String(getpid()))
                log.info("blkback \(getpid()) serving backend/vbd")
                try Threads.spawn(name: "blkback-signals") {
                    var signal: Int32 = 0
                    var set = blocked
                    sigwait(&set, &signal)
                    serving.cancel()
                }
                do {
                    try await serving.value
                } catch is CancellationError {}
                // Stopped on request: xend must not send new disks our way.
                try? await client.remove(marker)
                log.info("blkback stopped; devices left for the next blkback")
            }
        } catch {
            log.error("blkback: \(error)")
            throw ExitCode(1)
        }
    }
}
