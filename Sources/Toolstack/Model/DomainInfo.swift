/// Why a domain stopped, as the guest told Xen (SHUTDOWN_* in
/// xen/sched.h).
public enum ShutdownReason: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case poweroff = 0
    case reboot = 1
    case suspend = 2
    case crash = 3
    case watchdog = 4
    case softReset = 5

    public var description: String {
        switch self {
        case .poweroff: return "poweroff"
        case .reboot: return "reboot"
        case .suspend: return "suspend"
        case .crash: return "crash"
        case .watchdog: return "watchdog"
        case .softReset: return "soft_reset"
        }
    }
}

/// One domain as the hypervisor reports it (xc_domain_getinfolist).
public struct DomainInfo: Sendable, Equatable {
    public var domid: UInt32
    public var isDying: Bool
    public var isShutdown: Bool
    public var isPaused: Bool
    public var isBlocked: Bool
    public var isRunning: Bool
    public var isHVM: Bool
    /// The guest's reason; meaningful only when `isShutdown`. Nil for a
    /// code Xen may add later.
    public var shutdownReason: ShutdownReason?
    public var totalPages: UInt64
    public var maxPages: UInt64
    /// Total CPU time used, in nanoseconds.
    public var cpuTime: UInt64
    public var onlineVCPUs: Int
    /// The domain handle (xend's UUID), 16 bytes.
    public var handle: [UInt8]

    public init(
        domid: UInt32, isDying: Bool = false, isShutdown: Bool = false, isPaused: Bool = false,
        isBlocked: Bool = false, isRunning: Bool = false, isHVM: Bool = false,
        shutdownReason: ShutdownReason? = nil, totalPages: UInt64 = 0, maxPages: UInt64 = 0,
        cpuTime: UInt64 = 0, onlineVCPUs: Int = 1, handle: [UInt8] = Array(repeating: 0, count: 16)
    ) {
        self.domid = domid
        self.isDying = isDying
        self.isShutdown = isShutdown
        self.isPaused = isPaused
        self.isBlocked = isBlocked
        self.isRunning = isRunning
        self.isHVM = isHVM
        self.shutdownReason = shutdownReason
        self.totalPages = totalPages
        self.maxPages = maxPages
        self.cpuTime = cpuTime
        self.onlineVCPUs = onlineVCPUs
        self.handle = handle
    }

    /// Memory in MiB (4 KiB pages).
    public var memoryMiB: Int { Int(totalPages / 256) }

    /// xm's six state columns for this domain.
    public var state: DomainStateFlags {
        DomainStateFlags(
            running: isRunning, blocked: isBlocked, paused: isPaused,
            shutdown: isShutdown && shutdownReason != .crash,
            crashed: isShutdown && shutdownReason == .crash, dying: isDying)
    }
}

/// The state column of `xm list`: six positions, each its letter or `-`,
/// in the order r b p s c d (running, blocked, paused, shutdown, crashed,
/// dying), as xend 3.x printed them.
public struct DomainStateFlags: Sendable, Hashable, CustomStringConvertible {
    public var running: Bool
    public var blocked: Bool
    public var paused: Bool
    public var shutdown: Bool
    public var crashed: Bool
    public var dying: Bool

    public init(
        running: Bool = false, blocked: Bool = false, paused: Bool = false,
        shutdown: Bool = false, crashed: Bool = false, dying: Bool = false
    ) {
        self.running = running
        self.blocked = blocked
        self.paused = paused
        self.shutdown = shutdown
        self.crashed = crashed
        self.dying = dying
    }

    /// e.g. `r-----`, `-b----`, `--p---`, `---s--`, `----c-`.
    public var description: String {
        let flags = [
            (running, "r"), (blocked, "b"), (paused, "p"), (shutdown, "s"), (crashed, "c"),
            (dying, "d"),
        ]
        return flags.map { $0.0 ? $0.1 : "-" }.joined()
    }

    /// Parses the six-column form; nil if malformed.
    public init?(parsing text: String) {
        let letters = Array("rbpscd")
        let chars = Array(text)
        guard chars.count == 6 else { return nil }
        var values: [Bool] = []
        for (char, letter) in zip(chars, letters) {
            if char == letter {
                values.append(true)
            } else if char == "-" {
                values.append(false)
            } else {
                return nil
            }
        }
        self.init(
            running: values[0], blocked: values[1], paused: values[2], shutdown: values[3],
            crashed: values[4], dying: values[5])
    }
}
