import ArgumentParser

/// `init`: PID 1. The dispatcher starts it directly when the process is
/// PID 1; run any other way it only explains itself.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "PID 1 of the Proxenos dom0 (started by the kernel as /init).",
        discussion: """
            Kernel command line keys: proxenos.hostname=NAME, proxenos.console=TTY, \
            proxenos.shell=0|1, proxenos.disable=SERVICE[,SERVICE], \
            proxenos.modules=MODULE[,MODULE], proxenos.debug; for dom0's address \
            ip=..., proxenos.net=IFACE, BOOTIF=01-MAC (netconf dom0); for provisioning \
            proxenos.config=URL, proxenos.config.sha256=HEX (provision).
            """)

    @Argument(parsing: .captureForPassthrough, help: .hidden)
    var ignored: [String] = []

    func run() throws {
        throw ValidationError("init runs only as process 1 (the kernel starts it as /init)")
    }
}
