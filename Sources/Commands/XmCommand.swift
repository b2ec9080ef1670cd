import ArgumentParser
import Consoled
import DomainConfig
import Toolstack

#if canImport(Glibc)
    import Glibc
#endif

/// `xm`: the admin's command for domains, as in the seed talk. Every
/// subcommand except `create --dryrun` asks xend over its socket.
struct XmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xm",
        abstract: "Manage Xen domains: create, list, console, pause, save, restore ...",
        discussion: """
            A domain is named by its name or its id. Domain configs live in /etc/xen \
            (xm create NAME looks there after the current directory).
            """,
        subcommands: [
            Create.self, List.self, Console.self, Destroy.self, Shutdown.self, Reboot.self,
            Pause.self, Unpause.self, Save.self, Restore.self, Info.self, Dmesg.self, Help.self,
            BlockAttach.self, BlockDetach.self, BlockList.self,
        ])

    /// Runs a subcommand body: errors go to stderr as `Error: ...` with
    /// exit status 1, as xm did.
    static func perform(_ body: () throws -> Void) throws {
        signal(SIGPIPE, SIG_IGN)
        do {
            try body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("Error: \(error)")
            throw ExitCode(1)
        }
    }

    static func printError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        // fflush(NULL) first so stdout and stderr keep their order.
        fflush(nil)
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }

    static func client() -> XendClient { XendClient() }

    /// Attaches to a domain's console through consoled's socket, waiting
    /// up to `waitSeconds` for consoled to serve it (a domain just
    /// created).
    static func attachConsole(
        _ domain: String, waitSeconds: Int, request: ConsoleHello.Request = .write,
        replay: Int = -1, raw: Bool = false
    ) throws {
        let (user, origin) = ConsoleTerminal.identity()
        let hello = ConsoleHello(
            domain: domain, request: request, replay: replay, raw: raw, user: user, origin: origin)
        try ConsoleTerminal.run(
            socketPath: ConsoledSettings().socketPath, hello: hello, waitSeconds: waitSeconds)
    }

    /// A path made absolute against the current directory (xend runs
    /// elsewhere).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else { return "/" + path }
        defer { free(cwd) }
        let directory = String(cString: cwd)
        return (directory.hasSuffix("/") ? directory : directory + "/") + path
    }
}

extension XmCommand {
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a domain from a config file.",
            discussion: """
                CONFIG is a file name, looked up as given and then in /etc/xen. NAME=VALUE \
                words set xm options (memory=256, name=web2, vif=..., overriding the file) or \
                variables the file can use (vmid=3).
                """)

        @Flag(name: .customShort("c"), help: "Attach to the console after creating.")
        var console = false

        @Flag(
            name: [.customShort("n"), .customLong("dryrun")],
            help: "Print the parsed config; create nothing.")
        var dryrun = false

        @Flag(name: [.customShort("p"), .customLong("paused")], help: "Leave the domain paused.")
        var paused = false

        @Flag(help: "Create the domain without the disks and NICs no backend serves yet.")
        var skipDevices = false

        @Argument(help: "The config file.")
        var config: String

        @Argument(help: "NAME=VALUE settings and variables.")
        var assignments: [String] = []

        func run() throws {
            try XmCommand.perform {
                let arguments = try XmCreateArguments(assignments)
                let loader = DomainConfigLoader(searchDirectories: ["/etc/xen"])
                let file = try loader.locate(config)
                var generator = SystemRandomNumberGenerator()
                let spec = try DomainConfigFile.evaluate(
                    file.contents, file: file.path, arguments: arguments,
                    workingDirectory: loader.workingDirectory, using: &generator)
                for warning in spec.warnings { XmCommand.printError("Warning: \(warning)") }
                if dryrun {
                    print("Using config file \"\(file.path)\".")
                    print(spec.dryRunText, terminator: "")
                    return
                }
                print("Using config file \"\(file.path)\".")
                let response = try XmCommand.client().call(
                    .create(spec, skipDevices: skipDevices, paused: paused))
                guard case .created(let domid, let name) = response else {
                    throw ToolstackError.malformedMessage("xend did not confirm the create")
                }
                print("Started domain \(name) (id \(domid))")
                if console {
                    fflush(nil)
                    try XmCommand.attachConsole(name, waitSeconds: 30)
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List domains: Name ID Mem VCPUs State Time(s).",
            discussion: """
                State: r running, b blocked, p paused, s shut down, c crashed, d dying.
                """)

        @Flag(
            name: [.customShort("l"), .customLong("long")],
            help: "Print each domain's config as an S-expression.")
        var long = false

        @Argument(help: "Domains to show (all when none is given).")
        var domains: [String] = []

        func run() throws {
            try XmCommand.perform {
                var summaries: [DomainSummary] = []
                let names: [String?] = domains.isEmpty ? [nil] : domains
                for name in names {
                    guard case .domains(let list) = try XmCommand.client().call(.list(domain: name))
                    else {
                        throw ToolstackError.malformedMessage("xend did not answer with domains")
                    }
                    summaries += list
                }
                print(
                    long ? XmListTable.renderLong(summaries) : XmListTable.render(summaries),
                    terminator: "")
            }
        }
    }

    struct Console: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach to a domain's console (Ctrl-] detaches).",
            discussion: """
                consoled serves every guest console to any number of clients at once, on the \
                serial console and over SSH alike: one writer, any number of spies (read-only). \
                The default attach writes if nobody does, else spies; --force takes write access \
                and the writer becomes a spy (and is told). The last lines are replayed first. \
                Escape sequences that could act on your terminal (title, clipboard, device \
                control, answerback requests) are shown escaped unless --raw.

                Ctrl-] detaches at once. Ctrl-^ (Ctrl-6) opens the escape menu; then one key:
                  w   who is attached      r   replay the last 50 lines
                  f   force write access   s   give write access up
                  .   detach               ?   help
                  Ctrl-^ sends a Ctrl-^; any other key: back to the console
                Logs: /var/log/xen/console/guest-NAME.log (attach, detach and bump included).
                """)

        @Argument(help: "Domain name or id.")
        var domain: String

        @Flag(help: "Attach read-only; typed input is ignored.")
        var spy = false

        @Flag(help: "Take write access; the current writer becomes a spy.")
        var force = false

        @Option(help: "Lines of history replayed on attach (default 20).")
        var replay: Int?

        @Flag(help: "Pass every byte the guest writes, escape sequences included.")
        var raw = false

        func validate() throws {
            if spy && force { throw ValidationError("--spy and --force exclude each other") }
            if let replay, replay < 0 { throw ValidationError("--replay must be 0 or more") }
        }

        func run() throws {
            try XmCommand.perform {
                try XmCommand.attachConsole(
                    domain, waitSeconds: 10, request: spy ? .spy : force ? .force : .write,
                    replay: replay ?? -1, raw: raw)
            }
        }
    }

    struct Destroy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pull the virtual plug: terminate a domain at once.")

        @Argument(help: "Domain name or id.")
        var domain: String

        func run() throws {
            try XmCommand.perform { _ = try XmCommand.client().call(.destroy(domain: domain)) }
        }
    }

    struct Shutdown: DomainStopCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a domain to shut down (its on_poweroff then applies).")

        @Flag(
            name: [.customShort("w"), .customLong("wait")], help: "Wait until the domain is gone.")
        var wait = false

        @Flag(name: [.customShort("a"), .customLong("all")], help: "Shut down every guest.")
        var all = false

        @Flag(name: [.customShort("R"), .customLong("reboot")], help: "Reboot instead.")
        var reboot = false

        @Option(help: "With -w: seconds to wait before destroying the domain.")
        var timeout = 300

        @Flag(
            help: ArgumentHelp(
                "With -a -w: the appliance is going down (PID 1's poweroff): stopped guests are destroyed whatever their on_poweroff says, and xend starts no domain any more.",
                visibility: .hidden))
        var host = false

        @Argument(help: "Domain name or id.")
        var domain: String?
    }

    struct Reboot: DomainStopCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a domain to reboot (its on_reboot then applies).")

        @Flag(
            name: [.customShort("w"), .customLong("wait")],
            help: "Wait until the old domain is gone.")
        var wait = false

        @Flag(name: [.customShort("a"), .customLong("all")], help: "Reboot every guest.")
        var all = false

        @Option(help: "With -w: seconds to wait before destroying the domain.")
        var timeout = 300

        @Argument(help: "Domain name or id.")
        var domain: String?

        var reboot: Bool { true }
        var host: Bool { false }
    }

    /// One domain, or all guests at once (with -w in one request to xend,
    /// which waits for them in parallel and reports each).
    static func shutdown(
        domain: String?, all: Bool, reboot: Bool, wait: Bool, timeout: Int, host: Bool = false
    ) throws {
        let client = client()
        if let domain {
            _ = try client.call(
                .shutdown(domain: domain, reboot: reboot, wait: wait, timeoutSeconds: timeout))
            return
        }
        if wait {
            // One request: xend asks them all, waits, destroys the rest, and
            // says what became of each.
            guard
                case .outcomes(let outcomes) = try client.call(
                    .shutdownAll(reboot: reboot, timeoutSeconds: timeout, host: host))
            else { throw ToolstackError.malformedMessage("xend did not answer with outcomes") }
            for outcome in outcomes { print(outcome) }
            if outcomes.isEmpty { print("no guest was running") }
            fflush(nil)
            if !outcomes.allSatisfy(\.isClean) { throw ExitCode(1) }
            return
        }
        guard case .domains(let list) = try client.call(.list(domain: nil)) else {
            throw ToolstackError.malformedMessage("xend did not answer with domains")
        }
        let guests = list.filter { $0.domid != 0 }.map { String($0.domid) }
        for guest in guests {
            _ = try client.call(
                .shutdown(domain: guest, reboot: reboot, wait: false, timeoutSeconds: timeout))
        }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a domain.")

        @Argument(help: "Domain name or id.")
        var domain: String

        func run() throws {
            try XmCommand.perform { _ = try XmCommand.client().call(.pause(domain: domain)) }
        }
    }

    struct Unpause: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unpause a paused domain.")

        @Argument(help: "Domain name or id.")
        var domain: String

        func run() throws {
            try XmCommand.perform { _ = try XmCommand.client().call(.unpause(domain: domain)) }
        }
    }

    struct Save: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Save a domain's state to a file; the domain then stops.")

        @Argument(help: "Domain name or id.")
        var domain: String

        @Argument(help: "The file to write (in dom0).")
        var file: String

        func run() throws {
            try XmCommand.perform {
                _ = try XmCommand.client().call(
                    .save(domain: domain, path: XmCommand.absolute(file)))
            }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a domain from a file written by xm save.")

        @Flag(name: [.customShort("p"), .customLong("paused")], help: "Leave the domain paused.")
        var paused = false

        @Argument(help: "The save file.")
        var file: String

        func run() throws {
            try XmCommand.perform {
                let response = try XmCommand.client().call(
                    .restore(path: XmCommand.absolute(file), paused: paused))
                if case .created(let domid, let name) = response {
                    print("Restored domain \(name) (id \(domid))")
                }
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the host and Xen.")

        func run() throws {
            try XmCommand.perform {
                guard case .info(let pairs) = try XmCommand.client().call(.info) else {
                    throw ToolstackError.malformedMessage("xend did not answer with info")
                }
                for (key, value) in pairs {
                    let padding = String(repeating: " ", count: max(1, 23 - key.count))
                    print("\(key)\(padding): \(value)")
                }
            }
        }
    }

    /// `xm help [COMMAND]`, as the seed says: "Für alles weitere: xm help".
    struct Help: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the commands, or one command's options.")

        @Argument(help: "A command (create, list, ...).")
        var command: String?

        func run() throws {
            guard let command else {
                print(XmCommand.helpMessage())
                return
            }
            let subcommands = XmCommand.configuration.subcommands
            guard
                let match = subcommands.first(where: {
                    $0.configuration.commandName == command
                        || $0._commandName == command
                })
            else {
                XmCommand.printError("Error: no xm command '\(command)'; try 'xm help'")
                throw ExitCode(1)
            }
            print(XmCommand.helpMessage(for: match))
        }
    }

    struct Dmesg: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show Xen's message buffer.")

        @Flag(name: [.customShort("c"), .customLong("clear")], help: "Clear it after reading.")
        var clear = false

        func run() throws {
            try XmCommand.perform {
                guard case .text(let text) = try XmCommand.client().call(.dmesg(clear: clear))
                else {
                    throw ToolstackError.malformedMessage("xend did not answer with text")
                }
                print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            }
        }
    }
}

/// `xm shutdown` and `xm reboot`: one domain or `-a` for every guest, the
/// same check and the same request (they differ in their help and in
/// whether the domain reboots).
protocol DomainStopCommand: ParsableCommand {
    var wait: Bool { get }
    var all: Bool { get }
    var reboot: Bool { get }
    var timeout: Int { get }
    var host: Bool { get }
    var domain: String? { get }
}

extension DomainStopCommand {
    func validate() throws {
        if all == (domain != nil) {
            throw ValidationError("name one domain, or give -a for all guests")
        }
        if host && !(all && wait) { throw ValidationError("--host goes with -a -w") }
    }

    func run() throws {
        try XmCommand.perform {
            try XmCommand.shutdown(
                domain: domain, all: all, reboot: reboot, wait: wait, timeout: timeout, host: host)
        }
    }
}
