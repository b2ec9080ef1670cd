/// Where the SSH server's files are and how it is started.
public struct SSHSettings: Sendable, Equatable {
    /// Host keys, dropbear's format; a provisioning bundle installs its own
    /// here before the launcher looks.
    public var keyDirectory = "/etc/dropbear"
    public var keyTypes: [HostKeyType] = HostKeyType.allCases
    /// dropbear writes its pid here; the provisioning step SIGTERMs that
    /// pid after installing new host keys, and PID 1 starts us again.
    public var pidFile = "/run/dropbear.pid"
    /// Written once provisioning is over (installed, refused, unreachable
    /// or none): the launcher waits for it so the first dropbear already
    /// serves the bundle's host keys and authorized_keys.
    public var provisionMarker = "/run/proxenos/provision.done"
    /// Whether this boot provisions (`proxenos.config=`); without it the
    /// marker never comes and nothing is waited for.
    public var provisioned = true
    /// How long to wait for the marker before starting anyway.
    public var provisionWait: Duration = .seconds(90)
    public var home = "/root"
    public var uid: UInt32 = 0
    public var port = 22
    public var dropbear = "/usr/sbin/dropbear"
    public var dropbearkey = "/usr/bin/dropbearkey"
    /// Where dropbearkey's output is caught (a file per run, removed after).
    public var scratchDirectory = "/run/proxenos"
    /// The console the fingerprints are printed on.
    public var console = "/dev/console"

    public init() {}

    public var sshDirectory: String { "\(home)/.ssh" }
    public var authorizedKeys: String { "\(sshDirectory)/authorized_keys" }

    /// dropbear's command line: in the foreground (PID 1 supervises it),
    /// logging to stderr (the service log), no password logins at all
    /// (`-s`, and `-g` for root should `-s` ever be dropped), the given
    /// host keys only.
    public func dropbearArguments(keys: [String]) -> [String] {
        [dropbear, "-F", "-E", "-s", "-g", "-P", pidFile, "-p", String(port)]
            + keys.flatMap { ["-r", $0] }
    }
}
