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
    /// killing it after `timeout`.
    public static func command(
        name: String, after: String, argv: [String], log: String, timeout: Duration
    ) -> Self {
        Self(name: name, after: after) {
            let spec = ProcessSpec(
                path: argv[0], arguments: argv, environment: SystemLayout.environment,
                streams: .logFile(log))
            let command = argv.joined(separator: " ")
            let pid: pid_t
            switch ProcessSpawner.spawn(spec) {
            case .success(let started): pid = started
            case .failure(let error):
                throw BootCommandError.couldNotStart(command, errno: "\(error)")
            }
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            while true {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid {
                    let exit = ExitStatus(waitStatus: status)
                    if exit.succeeded { return }
                    throw BootCommandError.failed(command, exit, log: log)
                }
                if clock.now >= deadline {
                    kill(pid, SIGKILL)
                    _ = waitpid(pid, &status, 0)
                    throw BootCommandError.timedOut(command, after: timeout, log: log)
                }
                usleep(20_000)
            }
        }
    }
}
