import ArgumentParser

/// The root of the multi-call executable: `proxenos PROGRAM ...`, or any
/// program name as argv[0] through a symlink (`/init`, `/usr/sbin/xm`, ...).
public struct Proxenos: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxenos",
        abstract: "Proxenos: a Xen dom0 appliance. One executable, many programs.",
        subcommands: programs
    )

    /// Every program the executable carries; the command name is also the
    /// argv[0] name it answers to.
    public static let programs: [any ParsableCommand.Type] = [
        InitCommand.self,
        XenStoreCommand.self,
        NetConfCommand.self,
        XendCommand.self,
        ConsoledCommand.self,
        XmCommand.self,
        SelfTestCommand.self,
        BlkbackCommand.self,
        NetbackCommand.self,
        SSHDCommand.self,
        ProvisionCommand.self,
    ]

    public init() {}
}
