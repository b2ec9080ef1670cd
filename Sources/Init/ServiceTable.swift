import LinuxSystem

/// One supervised dom0 program.
public struct ServiceSpec: Sendable, Equatable {
    /// How PID 1 treats the service when it exits.
    public enum Restart: Sendable, Equatable {
        /// Respawn with back-off; give up after repeated fast failures.
        case withBackoff
        /// Respawn with back-off and never give up (the admin shell).
        case forever
    }

    public var name: String
    /// argv[0] is the executable's path.
    public var argv: [String]
    /// Where stdin, stdout and stderr go.
    public var streams: StandardStreams
    /// A path (usually a socket) whose existence means the service is ready;
    /// services later in the table start only once it exists.
    public var readyPath: String?
    public var restart: Restart
    /// How long a stop may take before SIGKILL.
    public var stopTimeout: Duration
    /// The signal that asks the service to stop (an interactive shell
    /// ignores SIGTERM but ends on SIGHUP, as on a terminal hang-up).
    public var stopSignal: Int32
    /// What the appliance loses when this service dies outside a shutdown,
    /// reported on the console; nil when a respawn loses nothing.
    public var lossOnExit: ServiceLoss?
    /// Whether the program reads the kernel's random numbers as it starts
    /// (every Swift program seeds its hashing from getrandom(2)): PID 1
    /// starts it only once they are ready, so that it does not wait for
    /// them in the kernel (see `KernelRandomness`).
    public var needsRandomness: Bool

    public init(
        name: String, argv: [String], streams: StandardStreams, readyPath: String? = nil,
        restart: Restart = .withBackoff, stopTimeout: Duration = .seconds(5),
        stopSignal: Int32 = 15, lossOnExit: ServiceLoss? = nil, needsRandomness: Bool = false
    ) {
        self.name = name
        self.argv = argv
        self.streams = streams
        self.readyPath = readyPath
        self.restart = restart
        self.stopTimeout = stopTimeout
        self.stopSignal = stopSignal
        self.lossOnExit = lossOnExit
        self.needsRandomness = needsRandomness
    }

    public var executable: String { argv.first ?? "" }
}

/// The state a service takes with it when it dies, so its respawn is not
/// mistaken for a recovery.
public struct ServiceLoss: Sendable, Equatable {
    /// What is lost, for the console.
    public var message: String
    /// A file PID 1 writes when the service dies: its existence tells the
    /// other programs (xend) the loss happened, until the next boot.
    public var markerPath: String

    public init(message: String, markerPath: String) {
        self.message = message
        self.markerPath = markerPath
    }

    /// The marker's one line: when (dom0 uptime) and how the service died.
    public static func markerText(uptime: String, status: ExitStatus) -> String {
        "at dom0 uptime \(uptime) s (it \(status.description))\n"
    }
}

/// The dom0 services, in start order (stopped in reverse). Each waits for
/// the `readyPath` of the ones before it.
public enum ServiceTable {
    public static let xenLibexec = "/usr/lib/xen-4.17/bin"
    public static let xenstoredSocket = "/run/xenstored/socket"

    /// The services a Proxenos dom0 runs.
    public static let dom0: [ServiceSpec] = [
        // The system log, first: xenstored reports through syslog(3), and
        // without a /dev/log its LOG_CONS fallback writes every message to
        // the console (a guest flooding its console once the log file
        // system was full made Debian's xenconsoled flood ours). Kept in
        // a 1 MiB ring in memory, bounded like the guest logs: `logread`.
        ServiceSpec(
            name: "syslogd",
            argv: ["/sbin/syslogd", "-n", "-C\(systemLogKiB)"],
            streams: .logFile("/var/log/syslogd.log"),
            readyPath: syslogSocket,
            stopTimeout: .seconds(2)),
        ServiceSpec(
            name: "xenstored",
            argv: [
                "\(xenLibexec)/xenstored", "--no-fork", "--pid-file", "/run/xenstored.pid",
            ],
            streams: .logFile("/var/log/xen/xenstored.log"),
            readyPath: xenstoredSocket,
            stopTimeout: .seconds(2),
            // Debian's C xenstored keeps its tree in memory only: the one
            // PID 1 respawns starts empty, and the guests' xenstore rings
            // are no longer served by anyone they know. xend refuses new
            // domains while the marker exists (docs/TOOLSTACK.md).
            lossOnExit: ServiceLoss(
                message: "the xenstore tree and every guest's xenstore connection are lost; "
                    + "running guests go on unmanaged and xend refuses new domains until "
                    + "the appliance reboots",
                markerPath: xenstoreLossMarker)),
        // The PV block backend, its own process (a fault there takes
        // neither xend nor init along). After xenstored, which it needs;
        // before xend in the table so it is stopped after it.
        ServiceSpec(
            name: "blkback",
            argv: ["/usr/sbin/blkback"],
            streams: .logFile("/var/log/xen/blkback.log"),
            needsRandomness: true),
        ServiceSpec(
            name: "consoled",
            argv: ["/usr/sbin/consoled"],
            // On the guest logs' bounded file system, like the logs it
            // writes: its own reports (rate-limited) must not grow /var
            // while a flooding guest has filled that file system. No
            // readyPath: xend must not wait for consoles; xm console waits
            // for consoled's socket itself.
            streams: .logFile("\(SystemLayout.consoleLogDirectory)/consoled.log"),
            needsRandomness: true),
        // The PV network backend: announces itself under
        // /proxenos/backend/vif, after which xend writes vif trees.
        ServiceSpec(
            name: "netback",
            argv: ["/usr/sbin/netback"],
            streams: .logFile("/var/log/xen/netback.log"),
            needsRandomness: true),
        ServiceSpec(
            name: "xend",
            argv: ["/usr/sbin/xend"],
            streams: .logFile("/var/log/xen/xend.log"),
            readyPath: xendSocket,
            needsRandomness: true),
        // SSH (Debian's dropbear, key-only), after xend so `xm` answers in
        // the first session. `sshd` waits for provisioning (its host keys
        // and authorized_keys) in its own process, then execs dropbear, so
        // this entry supervises dropbear itself; no readyPath, so the ready
        // banner does not wait for it.
        ServiceSpec(
            name: "dropbear",
            argv: ["/usr/sbin/sshd"],
            streams: .logFile("/var/log/dropbear.log"),
            stopTimeout: .seconds(2),
            needsRandomness: true),
    ]

    /// Written by PID 1 when xenstored dies; read by xend (its
    /// `XendSettings.xenstoreLossMarker` default is the same path).
    public static let xenstoreLossMarker = "/run/proxenos/xenstore-lost"

    /// Where syslogd listens (its existence means the system log is ready).
    public static let syslogSocket = "/dev/log"

    /// The size of syslogd's ring buffer, in KiB.
    public static let systemLogKiB = 1024

    /// xend's API socket (its existence means xend is ready).
    public static let xendSocket = "/run/xend/xend.sock"

    /// The table with the named services left out; unknown names are
    /// returned so the caller can warn about them.
    public static func enabled(
        _ table: [ServiceSpec], disabling names: Set<String>
    ) -> (services: [ServiceSpec], unknown: Set<String>) {
        let known = Set(table.map(\.name))
        return (table.filter { !names.contains($0.name) }, names.subtracting(known))
    }

    /// Checks a table for the mistakes that would make supervision
    /// ambiguous: empty or duplicate names, empty argv, relative paths.
    public static func validate(_ table: [ServiceSpec]) -> [String] {
        var problems: [String] = []
        var seen: Set<String> = []
        for spec in table {
            if spec.name.isEmpty { problems.append("a service has no name") }
            if !seen.insert(spec.name).inserted {
                problems.append("service \(spec.name) is listed twice")
            }
            if spec.argv.isEmpty {
                problems.append("service \(spec.name) has no command")
            } else if !spec.executable.hasPrefix("/") {
                problems.append("service \(spec.name): \(spec.executable) is not an absolute path")
            }
        }
        return problems
    }
}
