import LinuxSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Why a boot command failed, in words for the console.
public enum BootCommandError: Error, CustomStringConvertible {
    case couldNotStart(String, errno: String)
    case failed(String, ExitStatus, log: String)
    case timedOut(String, after: Duration, log: String)

    public var description: String {
        switch self {
        case .couldNotStart(let command, let errno):
            return "\(command) could not be started: \(errno)"
        case .failed(let command, let status, let log): return "\(command) \(status) (see \(log))"
        case .timedOut(let command, let after, let log):
            return "\(command) did not finish within \(format(after)); killed (see \(log))"
        }
    }
}

extension InitProcess.BootStep {
    /// A step that runs a program to completion (in its own process, so a
    /// fault in it cannot take PID 1 down) with its output in a log file,
    /// killing it after `timeout`. PID 1 supervises on while it runs.
    /// `onlyWith` names a kernel command-line key without which the step
    /// is skipped; `holdsBanner: false` lets the banner come before it ends.
    public static func command(
        name: String, after: Trigger, argv: [String], log: String, timeout: Duration,
        onlyWith: String? = nil, holdsBanner: Bool = true
    ) -> Self {
        Self(
            name: name, after: after, action: .program(argv: argv, log: log, timeout: timeout),
            onlyWith: onlyWith, holdsBanner: holdsBanner)
    }
}
