import ArgumentParser
import CLinux
import Init
import LinuxSystem
import NetConf

#if canImport(Glibc)
    import Glibc
#endif

extension NetConfCommand {
    /// `proxenos netconf dom0`: dom0's own address, after the network-script
    /// (PID 1 runs it as a boot step). DHCP goes to busybox's udhcpc: it is
    /// already in the image, keeps the lease (renew, rebind, a new DISCOVER
    /// when the server goes away) as a daemon, and its hook only has to set
    /// an address and a route, which a few `ip` lines do.
    struct Dom0Address: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dom0",
            abstract: "Give dom0 its address (ip=, proxenos.net=, BOOTIF=; DHCP by default).",
            discussion: """
                In bridge mode the address goes on the bridge when the boot interface is \
                the bridge's netdev. DHCP runs udhcpc, which stays in the background to \
                keep the lease; its hook records the lease in /run/proxenos/dom0-address.
                """)

        @Option(name: .long, help: "The xend configuration file.")
        var config = "/etc/xen/xend-config.sxp"

        @Option(help: "The kernel command line to read.")
        var cmdline = "/proc/cmdline"

        @Option(help: "udhcpc's hook script.")
        var dhcpScript = "/etc/proxenos/udhcpc.script"

        func run() throws {
            let words = KernelCommandLine(Files.readIfPresent(cmdline) ?? "")
            let plan: Dom0AddressPlan
            do {
                plan = try Dom0AddressPlan(commandLine: words)
            } catch {
                say("dom0 network: \(error); no address for dom0")
                exitProcess(1)
            }
            if plan.method == .off {
                say("dom0 network: ip=off; dom0 has no address")
                return
            }
            let script: NetworkScript
            do {
                script = try XendConfig.load(path: config)?.network ?? .none
            } catch {
                say("dom0 network: \(config): \(error)")
                exitProcess(1)
            }
            guard
                let (netlink, links) = Dom0AddressPlan.linksNow(say: { say("dom0 network: \($0)") })
            else { exitProcess(1) }
            let interface: String
            switch plan.resolveInterface(links: links, script: script) {
            case .success(let name): interface = name
            case .failure(let problem):
                say("dom0 network: \(problem); no address for dom0")
                exitProcess(1)
            }
            if clinux_interface_up(interface) != 0 {
                say(
                    "dom0 network: cannot bring \(interface) up: \(String(cString: strerror(errno)))"
                )
                exitProcess(1)
            }
            switch plan.method {
            case .off: return
            case .fixed(let fixed):
                applyStatic(fixed, on: interface, netlink: netlink, links: links)
            case .dhcp:
                runDHCP(on: interface)
            }
        }

        private func applyStatic(
            _ fixed: Dom0AddressPlan.StaticAddress, on interface: String, netlink: LibnlRoute,
            links: [Link]
        ) {
            guard let index = links.first(where: { $0.name == interface })?.index else {
                say("dom0 network: no interface \(interface)")
                exitProcess(1)
            }
            do {
                try fixed.apply(on: index, netlink: netlink)
            } catch {
                say("dom0 network: \(fixed.address.cidr) on \(interface): \(error)")
                exitProcess(1)
            }
            try? Files.makeDirectories("/run/proxenos")
            let gateway = fixed.gateway.map { " \($0)" } ?? ""
            try? Files.write(
                Self.statePath, "\(interface) \(fixed.address.cidr)\(gateway)\n")
            say(
                "dom0 network: \(fixed.address.cidr) on \(interface) (ip=)"
                    + (fixed.gateway.map { ", gateway \($0)" } ?? ""))
        }

        /// Where the address in effect is recorded (interface, CIDR,
        /// gateway): the provisioning step waits for it.
        static let statePath = "/run/proxenos/dom0-address"

        /// Replaces this process with udhcpc: it asks a few times in the
        /// foreground (so the boot step ends with an address when a server
        /// answers), then keeps the lease, or keeps asking, in the
        /// background. PID 1 reaps it like any orphan.
        private func runDHCP(on interface: String) -> Never {
            let argv = [
                "udhcpc", "-i", interface, "-s", dhcpScript, "-t", "4", "-T", "2", "-A", "15",
                "-b", "-p", "/run/udhcpc.\(interface).pid",
            ]
            say("dom0 network: DHCP on \(interface)")
            var cStrings = argv.map { strdup($0) }
            cStrings.append(nil)
            execv("/sbin/udhcpc", &cStrings)
            say("dom0 network: cannot run /sbin/udhcpc: \(String(cString: strerror(errno)))")
            exitProcess(1)
        }

        private func say(_ line: String) {
            BootConsole.say(line)
        }
    }
}

extension Dom0AddressPlan.StaticAddress {
    /// Puts the address on interface `index` unless it is there, the
    /// gateway's default route unless dom0 has one, and the name servers
    /// in /etc/resolv.conf: `ip=`'s address, for dom0 or for the fetch.
    func apply(on index: Int32, netlink: LibnlRoute) throws {
        let existing = try netlink.addresses().filter { $0.interface == index }
        if !existing.contains(where: { $0.local == address }) {
            try netlink.addAddress(InterfaceAddress(interface: index, local: address))
        }
        if let gateway {
            let routes = try netlink.routes()
            if !routes.contains(where: {
                $0.destination.length == 0 && !$0.destination.address.isV6
                    && $0.table == Route.tableMain
            }) {
                try netlink.addRoute(
                    Route(
                        destination: IPPrefix(.unspecified(v6: false), length: 0),
                        nexthops: [Nexthop(interface: index, gateway: gateway)]))
            }
        }
        if !nameServers.isEmpty {
            try? Files.write("/etc/resolv.conf", nameServers.map { "nameserver \($0)\n" }.joined())
        }
    }
}

extension Dom0AddressPlan {
    /// The plan for the kernel command line's `ip=`, `proxenos.net=` and
    /// `BOOTIF=`.
    init(commandLine words: KernelCommandLine) throws(Problem) {
        self = try Self.parse(
            ip: words.value("ip"), net: words.value("proxenos.net"), bootif: words.value("BOOTIF"))
    }

    /// A netlink handle and the links it shows now; nil when netlink
    /// fails, said through `say`.
    static func linksNow(say: (String) -> Void) -> (LibnlRoute, [Link])? {
        do {
            let netlink = try LibnlRoute()
            return (netlink, try netlink.links())
        } catch {
            say("netlink: \(error)")
            return nil
        }
    }
}

/// Messages of a boot step's program, which PID 1 started with its output
/// in a log file: each goes to the log and to the console, where the admin
/// watching the boot sees it.
enum BootConsole {
    static func say(_ line: String) {
        let bytes = Array(("proxenos: " + line + "\n").utf8)
        writeAll(1, bytes)
        let descriptor = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        writeAll(descriptor, bytes)
    }

    private static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                write(descriptor, $0.baseAddress, $0.count)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
