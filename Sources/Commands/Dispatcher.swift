import ArgumentParser
import Init

#if canImport(Glibc)
    import Glibc
#endif

/// Chooses the program from argv[0] (symlink name) or the first argument.
public enum Dispatcher {
    /// Names argv[0] may carry that mean "the program is in argv[1]".
    static let selfNames: Set<String> = ["proxenos"]

    /// The program name and its arguments for an argv vector; argv[0]'s
    /// basename wins unless it is the executable's own name.
    public static func resolve(_ argv: [String]) -> [String] {
        guard let first = argv.first else { return [] }
        let base = String(first.split(separator: "/").last ?? Substring(first))
        let rest = Array(argv.dropFirst())
        if selfNames.contains(base) || base.isEmpty { return rest }
        return [base] + rest
    }

    /// Runs the selected program and exits with its status.
    public static func run(arguments argv: [String]) -> Never {
        // As PID 1 we are init whatever the name, and the kernel may hand
        // init words it did not recognise (a runlevel such as "4"): they must
        // not reach an argument parser that would reject them and panic the
        // kernel.
        if getpid() == 1 {
            InitProcess(bootSteps: Dom0Boot.steps, shutdownSteps: [HostShutdown.step]).run()
        }
        Proxenos.main(resolve(argv))
        exit(0)
    }
}
