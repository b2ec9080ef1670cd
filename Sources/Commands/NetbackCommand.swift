import ArgumentParser
import CLinux
import LinuxSystem
import Logging
import Synchronization
import VifBackend
import XenBus
import XenDevices
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `netback`: the PV network backend. PID 1 supervises it; it announces
/// itself under /proxenos/backend/vif so xend writes vif trees.
struct NetbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netback",
        abstract: "Serve every backend/vif device of dom0: one TAP (vifD.N) per guest NIC.",
        discussion: """
            Each vif's TAP is created with the vif's MTU and brought online by the \
            vif-script of xend-config.sxp (bridge, route or NAT), in process. On SIGTERM the \
            vifs are left Connected for the next netback, which adopts them; counters of \
            each vif are written to --stats-dir every few seconds.
            """)

    @Option(help: "The xend configuration (its vif-script and bridge).")
    var config = "/etc/xen/xend-config.sxp"

    @Option(help: "Where netconf records what it changed.")
    var stateDir = "/run/proxenos/netconf"

    @Option(help: "Queues a guest may use per vif (multi-queue-max-queues).")
    var maxQueues = 2

    @Option(help: "Where each vif's counters are written.")
    var statsDir = "/run/proxenos/netback"

    static let marker = "/proxenos/backend/vif"

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let log = Logger(label: "netback")
        // SIGTERM/SIGINT arrive on a descriptor, blocked everywhere else
        // (threads created from here on inherit the mask).
        let signals = [SIGTERM, SIGINT]
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in signals { sigaddset(&mask, number) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        let signalDescriptor = signals.withUnsafeBufferPointer {
            clinux_signalfd($0.baseAddress, Int32($0.count))
        }
        guard signalDescriptor >= 0 else {
            log.error("netback: signalfd failed: errno \(errno)")
            throw ExitCode(1)
        }
        do {
            try runBlocking {
                try await Self.serve(
                    config: config, stateDir: stateDir, maxQueues: maxQueues,
                    statsDir: statsDir, signalDescriptor: signalDescriptor, log: log)
            }
        } catch {
            log.error("netback: \(error)")
            throw ExitCode(1)
        }
    }

    static func serve(
        config: String, stateDir: String, maxQueues: Int, statsDir: String,
        signalDescriptor: Int32, log: Logger
    ) async throws {
        let client = try XenStoreClient.connectDefault()
        let store = XenStoreBusStore(client: client)
        let registry = VifRegistry()
        let driver = VifDriver(
            grants: try LinuxGrantTable(),
            openEventChannel: { () throws(XenBusError) -> any EventChannel in
                try LinuxEventChannel()
            },
            network: HostVifNetwork(configPath: config, stateDirectory: stateDir),
            maxQueues: maxQueues, registry: registry, log: { log.info("\($0)") })
        let bus = BackendBus(store: store, driver: driver, logger: log)
        let running = Task { try await bus.run() }
        // A signal ends the bus: connections are suspended (TAPs closed,
        // rings left for the successor) and the announcement withdrawn.
        try Threads.spawn(name: "netback-signal") {
            var entry = pollfd(fd: signalDescriptor, events: Int16(POLLIN), revents: 0)
            while poll(&entry, 1, -1) < 0 && errno == EINTR {}
            let number = clinux_signalfd_read(signalDescriptor)
            log.info("netback: signal \(number), stopping; vifs stay for the next netback")
            running.cancel()
        }
        try? Files.makeDirectories(statsDir)
        try await store.write(marker, String(getpid()))
        log.info("netback \(getpid()) serving backend/vif (up to \(maxQueues) queues per vif)")
        let reporter = Task {
            var written: Set<String> = []
            while !Task.isCancelled {
                var current: Set<String> = []
                for vif in registry.snapshot {
                    current.insert(vif.name)
                    try? Files.write("\(statsDir)/\(vif.name)", "\(vif.counters)\n")
                }
                for gone in written.subtracting(current) { _ = unlink("\(statsDir)/\(gone)") }
                written = current
                try? await Task.sleep(for: .seconds(2))
            }
        }
        defer { reporter.cancel() }
        do {
            try await running.value
        } catch is CancellationError {
        } catch {
            try? await store.remove(marker)
            throw error
        }
        try? await store.remove(marker)
    }
}
