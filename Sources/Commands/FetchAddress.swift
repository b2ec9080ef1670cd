import CLinux
import Init
import LinuxSystem
import NetConf

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this boot provisions: `proxenos.config=` on the kernel command
/// line (xend and the SSH server then wait for the bundle's install).
enum Dom0Provisioning {
    static var isProvisioned: Bool {
        KernelCommandLine(Files.readIfPresent("/proc/cmdline") ?? "").value("proxenos.config")
            != nil
    }
}

/// dom0's address for the bundle's first fetch. That fetch comes before
/// the network-script, so the bundle's xend-config.sxp decides the network
/// mode of the very boot that fetched it; the address is held on the boot
/// NIC only for the fetch (a lease from `udhcpc -q`, which quits once it
/// has one, or `ip=`'s address) and removed after it, so the network-script
/// finds the NIC as it came up. dom0's lasting address is the
/// `dom0-address` step's, after the network-script.
struct FetchAddress {
    /// The fetch lease's record (udhcpc's hook in fetch mode writes it).
    static let statePath = "/run/proxenos/fetch-address"

    let interface: String
    let index: Int32
    /// The IPv4 addresses the NIC had before the fetch's: they stay.
    let kept: Set<IPPrefix>

    /// The address on the boot NIC, or nil (said on the console) when
    /// dom0 gets none (`ip=off`, no such NIC, no DHCP answer): the fetch
    /// is then tried once the `dom0-address` step has given dom0 its own.
    static func acquire(words: KernelCommandLine, config: String, dhcpScript: String)
        -> FetchAddress?
    {
        let plan: Dom0AddressPlan
        do {
            plan = try Dom0AddressPlan(commandLine: words)
        } catch {
            BootConsole.say("provision: \(error); no address to fetch with")
            return nil
        }
        if plan.method == .off { return nil }
        let script = (try? XendConfig.load(path: config))?.network ?? .none
        guard
            let (netlink, links) = Dom0AddressPlan.linksNow(say: {
                BootConsole.say("provision: \($0)")
            })
        else { return nil }
        // The network-script has not run: no bridge yet, so this is the NIC.
        let interface: String
        switch plan.resolveInterface(links: links, script: script) {
        case .success(let name): interface = name
        case .failure(let problem):
            BootConsole.say("provision: \(problem); no address to fetch with")
            return nil
        }
        guard let index = links.first(where: { $0.name == interface })?.index,
            clinuxInterfaceUp(interface)
        else {
            BootConsole.say("provision: cannot bring \(interface) up")
            return nil
        }
        let before = (try? netlink.addresses()) ?? []
        let held = FetchAddress(
            interface: interface, index: index,
            kept: Set(
                before.filter { $0.interface == index && !$0.local.address.isV6 }.map(\.local)))
        switch plan.method {
        case .off: return nil
        case .fixed(let fixed):
            do {
                try fixed.apply(on: index, netlink: netlink)
            } catch {
                BootConsole.say("provision: \(fixed.address.cidr) on \(interface): \(error)")
                held.release()
                return nil
            }
            BootConsole.say("provision: \(fixed.address.cidr) on \(interface) for the fetch (ip=)")
            return held
        case .dhcp:
            // The hook's fetch mode: no state file, its own console line.
            let spec = ProcessSpec(
                path: "/sbin/udhcpc",
                arguments: [
                    "udhcpc", "-i", interface, "-s", dhcpScript, "-q", "-n", "-f", "-t", "4", "-T",
                    "2",
                ],
                environment: SystemLayout.environment + ["PROXENOS_LEASE=fetch"],
                streams: .inherit)
            switch ProcessSpawner.spawn(spec) {
            case .failure(let error):
                BootConsole.say("provision: cannot run udhcpc: \(error)")
                return nil
            case .success(let pid):
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                guard ExitStatus(waitStatus: status).succeeded else {
                    BootConsole.say("provision: no DHCP answer on \(interface) for the fetch")
                    held.release()
                    return nil
                }
                return held
            }
        }
    }

    /// Takes the fetch's IPv4 addresses off the NIC (their routes go with
    /// them); addresses it had before stay.
    func release() {
        unlink(Self.statePath)
        guard let netlink = try? LibnlRoute(), let addresses = try? netlink.addresses() else {
            BootConsole.say("provision: cannot read \(interface)'s addresses to remove them")
            return
        }
        for address in addresses
        where address.interface == index && !address.local.address.isV6
            && !kept.contains(address.local)
        {
            do {
                try netlink.deleteAddress(address)
            } catch {
                BootConsole.say(
                    "provision: cannot remove \(address.local.cidr) from \(interface): \(error)")
            }
        }
    }
}

private func clinuxInterfaceUp(_ name: String) -> Bool {
    clinux_interface_up(name) == 0
}
