import ArgumentParser
import DataPath
import LinuxSystem
import Logging
import SelfTest

#if canImport(Glibc)
    import Glibc
#endif

/// `proxenos selftest`: the backend runtime checked against the real Xen
/// of this dom0 (event channels, grants, rings, a backend restart).
struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check event channels, grants and the backend runtime on this host's Xen.",
        discussion: """
            Prints one line per check and exits non-zero if any fails: event-channel \
            loopback, a gntalloc self-grant mapped and copied, an echo ring through real \
            grants and event channels, and the same with the echo backend process killed \
            (SIGKILL) and restarted while requests flow.
            """,
        subcommands: [Run.self, EchoBackendCommand.self],
        defaultSubcommand: Run.self)

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Run every check (the default).")

        @Option(help: "Requests each echo check sends.")
        var requests = 1_000_000

        @Option(help: "SIGKILLs of the echo backend during the restart check.")
        var restarts = 2

        @Option(help: "Where the echo backends keep ring journals.")
        var journalDirectory = RingJournalFile.defaultDirectory

        func run() throws {
            let test = SelfTest(
                requests: max(1, requests), restarts: max(0, restarts),
                journalDirectory: journalDirectory)
            let passed = try runBlocking {
                await test.run { line in print(line) }
            }
            if !passed { throw ExitCode(1) }
        }
    }

    /// The echo backend process the restart check starts and kills.
    struct EchoBackendCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "echo-backend",
            abstract: "Serve every backend/echo device of dom0 (for the restart check).")

        @Option(help: "Where ring journals live.")
        var journalDirectory = RingJournalFile.defaultDirectory

        func run() throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .info
                return handler
            }
            do {
                try runBlocking {
                    try await EchoBackendProcess.run(journalDirectory: journalDirectory)
                }
            } catch {
                Logger(label: "echo-backend").error("echo-backend: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
