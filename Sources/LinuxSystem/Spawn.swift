import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Where a spawned process's standard input, output and error go.
public enum StandardStreams: Sendable, Equatable {
    /// stdin from /dev/null; stdout and stderr appended to a log file.
    case logFile(String)
    /// All three on a terminal that becomes the process's controlling
    /// terminal (the process is a session leader).
    case terminal(String)
    /// Inherit the caller's descriptors 0, 1 and 2.
    case inherit
}

/// What to run: an executable path, its argv (argv[0] included) and the
/// environment as `KEY=value` strings.
public struct ProcessSpec: Sendable, Equatable {
    public var path: String
    public var arguments: [String]
    public var environment: [String]
    public var streams: StandardStreams

    public init(
        path: String, arguments: [String], environment: [String], streams: StandardStreams
    ) {
        self.path = path
        self.arguments = arguments
        self.environment = environment
        self.streams = streams
    }
}

/// Starts processes with posix_spawn(3): each child gets its own session,
/// an empty signal mask and default signal dispositions, whatever the caller
/// (PID 1 blocks every signal) has.
public enum ProcessSpawner {
    /// Spawns `spec` and returns the child's pid.
    public static func spawn(_ spec: ProcessSpec) -> Result<pid_t, Errno> {
        var attributes = posix_spawnattr_t()
        guard posix_spawnattr_init(&attributes) == 0 else { return .failure(.noMemory) }
        defer { posix_spawnattr_destroy(&attributes) }
        var actions = posix_spawn_file_actions_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else { return .failure(.noMemory) }
        defer { posix_spawn_file_actions_destroy(&actions) }

        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        let flags =
            Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | CLINUX_POSIX_SPAWN_SETSID
        posix_spawnattr_setflags(&attributes, flags)

        switch spec.streams {
        case .inherit:
            break
        case .logFile(let path):
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(
                &actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o640)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .terminal(let path):
            // glibc runs setsid before the file actions, so opening the
            // terminal without O_NOCTTY makes it the controlling terminal.
            posix_spawn_file_actions_addopen(&actions, 0, path, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        }

        return withCStrings(spec.arguments) { argv in
            withCStrings(spec.environment) { envp in
                var pid: pid_t = 0
                let status = posix_spawn(&pid, spec.path, &actions, &attributes, argv, envp)
                return status == 0 ? .success(pid) : .failure(Errno(rawValue: status))
            }
        }
    }
}

extension ProcessSpawner {
    /// Replaces this process's image (execv: same pid, same environment,
    /// descriptors not close-on-exec kept). Returns only on failure.
    public static func execute(path: String, arguments: [String]) -> Errno {
        withCStrings(arguments) { argv in
            _ = execv(path, argv)
            return Errno(rawValue: errno)
        }
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(
    _ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R
) -> R {
    let pointers = strings.map { strdup($0) }
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers + [nil])
}
