import ArgumentParser
import LinuxSystem
import NetConf
import XenStore

#if canImport(Glibc)
    import Glibc
#endif

/// `proxenos netconf`: xend-config.sxp's network-script and vif-script,
/// done over netlink and nftables instead of shell scripts.
public struct NetConfCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "netconf",
        abstract: "Set up dom0's network from xend-config.sxp (bridging, routing or NAT).",
        subcommands: [Check.self, Start.self, Stop.self, Status.self, Vif.self, Dom0Address.self]
    )

    public init() {}

    /// Options every network command shares.
    struct Common: ParsableArguments {
        @Option(name: .long, help: "The xend configuration file.")
        var config = "/etc/xen/xend-config.sxp"

        @Option(name: .long, help: "Where netconf records what it changed, for stop.")
        var stateDir = "/run/proxenos/netconf"

        /// The configuration; a missing file means xend's defaults, as in xend.
        func load() throws -> XendConfig {
            let loaded: XendConfig
            do {
                guard let config = try XendConfig.load(path: config) else {
                    warn("\(config): not found; using xend's defaults (no network-script)")
                    return XendConfig.defaults(file: config)
                }
                loaded = config
            } catch {
                fail(error)
            }
            for warning in loaded.warnings { warn(warning.description) }
            return loaded
        }

        func host() throws -> NetworkHost {
            do {
                return try NetworkHost.system(recordDirectory: stateDir)
            } catch {
                fail(error)
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Parse a configuration and print its effective values.")

        @Argument(help: "The file to check.")
        var file = "/etc/xen/xend-config.sxp"

        func run() throws {
            let config: XendConfig
            do {
                guard let loaded = try XendConfig.load(path: file) else {
                    fail(NetConfError.file(path: file, operation: "read", .noSuchFileOrDirectory))
                }
                config = loaded
            } catch {
                fail(error)
            }
            for warning in config.warnings { warn(warning.description) }
            print(Report.effectiveConfiguration(config), terminator: "")
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the network-script: build the bridge, or turn on routing or NAT.")

        @OptionGroup var common: Common

        func run() throws {
            let config = try common.load()
            let host = try common.host()
            perform(host) { () throws(NetConfError) in
                switch config.network.mode {
                case .bridge: try NetworkBridge.start(config.network, on: host)
                case .route, .nat: try NetworkRouting.start(config.network, on: host)
                case .none: host.noteNothing("no network-script configured")
                }
            }
        }
    }

    struct Stop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Undo the network-script: restore the netdev as start found it.")

        @OptionGroup var common: Common

        func run() throws {
            let config = try common.load()
            let host = try common.host()
            perform(host) { () throws(NetConfError) in
                switch config.network.mode {
                case .bridge: try NetworkBridge.stop(config.network, on: host)
                case .route, .nat: try NetworkRouting.stop(config.network, on: host)
                case .none: host.noteNothing("no network-script configured")
                }
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the network-script's state; exit status 3 when not started.")

        @OptionGroup var common: Common

        func run() throws {
            let config = try common.load()
            let host = try common.host()
            do {
                let (text, started) = try Report.status(config, on: host)
                print(text, terminator: "")
                if !started { throw ExitCode(3) }
            } catch let error as NetConfError {
                fail(error)
            }
        }
    }

    struct Vif: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the vif-script for one guest NIC (netback calls this).")

        enum Action: String, ExpressibleByArgument, CaseIterable {
            case online
            case offline
        }

        @Argument(help: "online or offline.")
        var action: Action

        @Argument(help: "The guest's domain id.")
        var domid: Int

        @Argument(help: "The vif's device id within the guest.")
        var devid: Int

        @OptionGroup var common: Common

        @Option(help: "The vif's interface name (default vifDOMID.DEVID).")
        var vifname: String?

        @Option(help: "The bridge to join (default from xend-config.sxp, else xenbr0).")
        var bridge: String?

        @Option(help: "A guest address (ip= of the vif spec); repeat for more.")
        var ip: [String] = []

        @Option(help: "The guest's MAC address.")
        var mac: String?

        @Option(help: "vif-bridge, vif-route or vif-nat, overriding xend-config.sxp's vif-script.")
        var script: String?

        /// The vif's backend entries: from the options when any is given (for
        /// tests and by hand), otherwise from xenstore's
        /// /local/domain/0/backend/vif/DOMID/DEVID, where xend wrote them.
        func backendEntries() throws -> VifBackendEntries {
            if bridge != nil || !ip.isEmpty || vifname != nil || mac != nil || script != nil {
                return VifBackendEntries(
                    bridge: bridge, ip: ip.isEmpty ? nil : ip.joined(separator: " "),
                    vifname: vifname, mac: mac, script: script)
            }
            let base = VifBackendEntries.directory(domid: domid, devid: devid)
            let values: [String: String]
            do {
                values = try runBlocking {
                    let store = try XenStoreClient.connectDefault()
                    defer { store.close() }
                    var values: [String: String] = [:]
                    for key in ["bridge", "ip", "vifname", "mac", "script"] {
                        values[key] = try await store.readIfPresent(base + "/" + key)
                    }
                    return values
                }
            } catch {
                throw ValidationError("cannot read \(base) from xenstore: \(error)")
            }
            return try VifBackendEntries.read(domid: domid, devid: devid) { path in
                values[String(path.split(separator: "/").last ?? "")]
            }
        }

        func run() throws {
            let config = try common.load()
            let entries = try backendEntries()
            let host = try common.host()
            perform(host) { () throws(NetConfError) in
                let spec = try VifSpec.resolve(
                    domid: domid, devid: devid, entries: entries, config: config)
                switch action {
                case .online: try VifScripts.online(spec, on: host)
                case .offline: try VifScripts.offline(spec, on: host)
                }
            }
        }
    }
}

/// Runs an operation, prints what it changed, and exits 1 on failure.
private func perform(_ host: NetworkHost, _ body: () throws(NetConfError) -> Void) {
    do {
        try body()
    } catch {
        for action in host.actions { print("netconf: \(action)") }
        if case .rollbackIncomplete = error {
            print("netconf: failed, and not every change above could be undone")
        } else if !host.actions.isEmpty {
            print("netconf: failed; every change above was undone")
        }
        fail(error)
    }
    for action in host.actions { print("netconf: \(action)") }
    if host.actions.isEmpty { print("netconf: nothing to change") }
}

extension NetworkHost {
    fileprivate func noteNothing(_ reason: String) {
        print("netconf: \(reason)")
    }
}

private func warn(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { buffer in
        _ = write(2, buffer.baseAddress, buffer.count)
    }
}

private func fail(_ error: any Error) -> Never {
    if case .config(let diagnostics) = error as? NetConfError {
        // file:line:column: error: ..., as compilers print them.
        warn(diagnostics.description)
    } else {
        warn("netconf: \(error)")
    }
    exitProcess(1)
}
