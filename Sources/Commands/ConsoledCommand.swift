import ArgumentParser
import Consoled
import DataPath
import LinuxSystem
import Logging
import XenBus
import XenDevices
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `consoled`: every guest's console to logs and to the admins attached
/// with `xm console`. PID 1 supervises it; its socket appearing means it is
/// ready.
struct ConsoledCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consoled",
        abstract: "The console multiplexer: guest consoles to logs and to xm console clients.",
        discussion: """
            Serves the PV console of every domain (found through @introduceDomain, dropped on \
            @releaseDomain): guest-NAME.log per guest and hypervisor.log in the log directory, \
            timestamped and rotated; SIGHUP reopens them. Clients attach on a Unix socket \
            (root only): one writer, any number of spies, a replay of the last lines.
            """)

    @Option(help: "The socket xm console attaches to.")
    var socket = ConsoledSettings().socketPath

    @Option(help: "Where the guest logs and hypervisor.log go.")
    var logDirectory = ConsoledSettings().logDirectory

    @Option(help: "Bytes per second a guest's console may produce on average.")
    var rate = ConsoledSettings().rateBytesPerSecond

    @Option(help: "A log file's size in bytes before it is rotated.")
    var logSize = ConsoledSettings().logMaximumBytes

    @Option(help: "Rotated log files kept per guest.")
    var logKeep = ConsoledSettings().logKeep

    @Flag(help: "Do not copy the hypervisor's console to hypervisor.log.")
    var noHypervisorLog = false

    func run() throws {
        // Before any thread starts: the server's signalfd takes these.
        ConsoleServer.blockSignals()
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let log = Logger(label: "consoled")
        var settings = ConsoledSettings()
        settings.socketPath = socket
        settings.logDirectory = logDirectory
        settings.rateBytesPerSecond = max(1024, rate)
        settings.burstBytes = max(settings.burstBytes, settings.rateBytesPerSecond)
        settings.logMaximumBytes = logSize
        settings.logKeep = logKeep
        do {
            let store = try XenStoreClient.connectDefault()
            let grants = try LinuxGrantTable()
            let channel = try LinuxEventChannel()
            let stop = StopSignal()
            let server = try makeServer(channel: channel, settings: settings, log: log, stop: stop)
            let domains = try XenDomainList()
            let daemon = ConsoleDaemon(
                store: XenStoreBusStore(client: store), grants: grants, server: server, logger: log,
                dyingDomains: { try domains.dyingDomains() })
            try server.worker.start()
            log.info("consoled ready on \(socket)")
            let outcome: String = try runBlocking {
                await withTaskGroup(of: String.self) { group in
                    group.addTask {
                        do throws(ConsoledError) {
                            try await daemon.run()
                            return "the domain watch ended"
                        } catch {
                            return "\(error)"
                        }
                    }
                    group.addTask { "stopped by signal \(await stop.wait())" }
                    let first = await group.next() ?? "?"
                    group.cancelAll()
                    return first
                }
            }
            try runBlocking { await server.worker.stop() }
            if outcome.hasPrefix("stopped by signal") {
                log.info("consoled: \(outcome)")
                return
            }
            log.error("consoled: \(outcome); exiting so PID 1 restarts it")
        } catch {
            log.error("consoled: \(error)")
        }
        throw ExitCode(1)
    }

    private func makeServer(
        channel: any EventChannel, settings: ConsoledSettings, log: Logger, stop: StopSignal
    ) throws -> ConsoleServer {
        let worker = try DataPathWorker(name: "consoled", eventChannel: channel) {
            endpoint, error in
            log.error("consoled: \(endpoint) stopped: \(error)")
        }
        var hypervisor: (any HypervisorConsoleSource)?
        if !noHypervisorLog {
            do {
                hypervisor = try XenHypervisorConsole()
            } catch {
                log.warning("no hypervisor.log: \(error)")
            }
        }
        let server = try ConsoleServer(
            worker: worker, settings: settings, logger: log, hypervisor: hypervisor,
            handleSignals: true, onStopSignal: { signal in stop.fire(signal) })
        return server
    }
}

/// The first SIGTERM/SIGINT, handed from the worker's thread to the main
/// task.
final class StopSignal: Sendable {
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation

    init() {
        (stream, continuation) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func fire(_ signal: Int32) { continuation.yield(signal) }

    func wait() async -> Int32 {
        for await signal in stream { return signal }
        return 0
    }
}
