import Init

/// The boot steps PID 1 runs once their service is ready.
enum Dom0Boot {
    static let steps: [InitProcess.BootStep] = [
        Dom0Store.bootStep,
        // proxenos.config=URL: the bundle, first, so its xend-config.sxp is
        // the one the network-script reads (network mode, bridge) in this
        // very boot; it fetches on an address held for the fetch only.
        // Skipped without the key. The banner waits for the first attempt
        // only (bounded here): retries and the auto guests' start go on in
        // the background.
        .command(
            name: "provision", after: .modulesLoaded,
            argv: ["/bin/proxenos", "provision"],
            log: "/var/log/provision.log", timeout: .seconds(90), onlyWith: "proxenos.config"),
        // xend-config.sxp's network-script: the bridge (or routing) guests'
        // vifs join. It needs the NIC and bridge drivers, not xenstore, so it
        // runs beside xenstored's start; the ready banner waits for it.
        .command(
            name: "network-script", after: .stepDone("provision"),
            argv: ["/bin/proxenos", "netconf", "start"],
            log: "/var/log/xen/network-script.log", timeout: .seconds(60)),
        // dom0's own address (ip=, else DHCP), on the bridge the
        // network-script made, so it is there to carry it. The banner does
        // not wait for the lease (a DHCP exchange on a link just up took
        // 2-3 s under TCG): the console says when it comes.
        .command(
            name: "dom0-address", after: .stepDone("network-script"),
            argv: ["/bin/proxenos", "netconf", "dom0"],
            log: "/var/log/dom0-address.log", timeout: .seconds(30), holdsBanner: false),
    ]
}
