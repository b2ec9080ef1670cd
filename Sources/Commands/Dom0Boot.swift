import Init

/// The boot steps PID 1 runs once their service is ready.
enum Dom0Boot {
    static let steps: [InitProcess.BootStep] = [
        Dom0Store.bootStep,
        // xend-config.sxp's network-script: the bridge (or routing) guests'
        // vifs join. It needs the NIC and bridge drivers, not xenstore, so it
        // runs beside xenstored's start; the ready banner waits for it.
        .command(
            name: "network-script", after: .modulesLoaded,
            argv: ["/bin/proxenos", "netconf", "start"],
            log: "/var/log/xen/network-script.log", timeout: .seconds(60)),
    ]
}
