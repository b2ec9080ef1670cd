import Init

/// The boot steps PID 1 runs once their service is ready.
enum Dom0Boot {
    static let steps: [InitProcess.BootStep] = [
        Dom0Store.bootStep,
        // xend-config.sxp's network-script: the bridge (or routing) guests'
        // vifs join, built before xend can start a guest.
        .command(
            name: "network-script", after: "xenstored",
            argv: ["/bin/proxenos", "netconf", "start"],
            log: "/var/log/xen/network-script.log", timeout: .seconds(60)),
    ]
}
