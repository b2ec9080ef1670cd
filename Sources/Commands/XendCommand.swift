import ArgumentParser
import LinuxSystem
import Logging
import NetConf
import Toolstack
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `xend`: the domain daemon. PID 1 supervises it; its socket appearing
/// means it is ready.
struct XendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xend",
        abstract: "The Xen domain daemon: builds, watches, saves and restores guests.",
        discussion: """
            Serves xm on a Unix socket (root only). Rebuilds its view of the guests from \
            xenstore and the hypervisor when it starts, leaving running guests alone. Device \
            trees are written only for device types whose backend announced itself under \
            /proxenos/backend/<vbd|vif> (its pid).
            """)

    @Option(help: "The socket xm talks to.")
    var socket = XendServer.defaultSocketPath

    @Option(help: "Seconds a backend may take to become ready for a new device.")
    var backendTimeout = 60

    @Option(help: "The xend-config.sxp whose minimum-restart-time and vif-script xend uses.")
    var config = "/etc/xen/xend-config.sxp"

    func run() throws {
        // A client that hangs up must not kill the daemon with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let log = Logger(label: "xend")
        do {
            let hypervisor = try XenHypervisor()
            let store = try XenStoreClient.connectDefault()
            // The bundle may bring xend-config.sxp: read it once installed.
            if Dom0Provisioning.isProvisioned
                && !Files.waitUntilExists(ProvisionCommand.donePath, timeout: .seconds(90))
            {
                log.error("no \(ProvisionCommand.donePath) after 90 s; reading \(config) as it is")
            }
            var settings = XendSettings()
            settings.backendTimeoutSeconds = backendTimeout
            if let parsed = loadConfig(log: log, defaults: settings) {
                settings.minimumRestartSeconds = Int(clamping: parsed.minimumRestartTime)
                settings.defaultVifScript = parsed.vif.scriptName
            }
            let xend = Xend(hypervisor: hypervisor, store: store, settings: settings, logger: log)
            try runBlocking { await xend.recover() }
            let server = try XendServer(path: socket, xend: xend, logger: log)
            try server.start()
            log.info("xend ready on \(socket)")
            try runBlocking { try await xend.monitor() }
            log.error("the @releaseDomain watch ended; exiting so xend restarts")
        } catch {
            log.error("xend: \(error)")
        }
        throw ExitCode(1)
    }

    /// xend-config.sxp for the restart-loop guard and the vif-script (the
    /// `script` of a vif whose config names none). A file netconf would
    /// refuse does not stop xend (running guests need it): nil, and the
    /// `defaults` apply, as the log says.
    private func loadConfig(log: Logger, defaults: XendSettings) -> XendConfig? {
        do {
            guard let parsed = try XendConfig.load(path: config) else { return nil }
            log.info(
                "restart-loop guard: \(parsed.minimumRestartTime) s (minimum-restart-time); vif-script \(parsed.vif.scriptName)"
            )
            return parsed
        } catch {
            log.error(
                "\(config): \(error); restart-loop guard stays \(defaults.minimumRestartSeconds) s, vif-script \(defaults.defaultVifScript)"
            )
            return nil
        }
    }
}
