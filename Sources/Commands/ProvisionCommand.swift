import ArgumentParser
import Init
import LinuxSystem
import Provisioner
import Provisioning

#if canImport(Glibc)
    import Glibc
#endif

/// `proxenos provision`: the bundle named by `proxenos.config=URL`, fetched,
/// checked and installed; its `auto` guests started once xend is up. PID 1
/// runs it as a boot step before the network-script (which then reads the
/// bundle's xend-config.sxp), on an address of its own (``FetchAddress``);
/// the banner waits for the first attempt only: retries and the guests'
/// start go on in the background.
struct ProvisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Fetch and install the provisioning bundle (proxenos.config=URL).",
        discussion: """
            Without --url, the URL and digest come from the kernel command line \
            (proxenos.config=URL, proxenos.config.sha256=HEX). The outcome of the first \
            attempt goes into /run/proxenos/provision.done: installed, refused, \
            unreachable or none. An unreachable server is tried again in the background, \
            with back-off.
            """)

    @Option(help: "The bundle's URL (default: proxenos.config= of the kernel command line).")
    var url: String?

    @Option(help: "The bundle's SHA-256, 64 hex digits (default: proxenos.config.sha256=).")
    var sha256: String?

    @Option(help: "The kernel command line to read.")
    var cmdline = "/proc/cmdline"

    @Option(help: "CA certificates (PEM) that HTTPS servers are verified against.")
    var caFile = "/etc/ssl/certs/ca-certificates.crt"

    @Option(help: "The xend configuration file (its network-script names the boot NIC).")
    var config = "/etc/xen/xend-config.sxp"

    @Option(help: "udhcpc's hook script, for the fetch's lease.")
    var dhcpScript = "/etc/proxenos/udhcpc.script"

    @Flag(help: .hidden)
    var retry = false

    @Option(name: .customLong("start-auto"), parsing: .upToNextOption, help: .hidden)
    var startAuto: [String] = []

    static let donePath = "/run/proxenos/provision.done"
    static let logPath = "/var/log/provision.log"
    static let xendSocket = "/run/xend/xend.sock"
    static let dropbearPid = "/run/dropbear.pid"

    func run() throws {
        if !startAuto.isEmpty {
            startGuests(startAuto)
            return
        }
        let words = KernelCommandLine(Files.readIfPresent(cmdline) ?? "")
        guard let text = url ?? words.value("proxenos.config"), !text.isEmpty else {
            Self.writeDone("none")
            return
        }
        let digest = sha256 ?? words.value("proxenos.config.sha256")
        let provision: Provision
        switch makeProvision(url: text, digest: digest) {
        case .success(let made): provision = made
        case .failure(let problem):
            BootConsole.say("provision: REFUSED proxenos.config=\(text): \(problem)")
            BootConsole.say("provision: booting with the image's defaults")
            Self.writeDone("refused")
            throw ExitCode(1)
        }
        if retry {
            retryUntilDone(provision)
            return
        }
        // At boot the network-script has not run yet (the bundle may choose
        // the network mode): the fetch brings its own address.
        let held =
            Files.exists(NetConfCommand.Dom0Address.statePath)
            ? nil : FetchAddress.acquire(words: words, config: config, dhcpScript: dhcpScript)
        BootConsole.say("provision: fetching \(provision.url)")
        let outcome = provision.attempt()
        held?.release()
        report(outcome, provision: provision)
        if case .unreachable = outcome {
            BootConsole.say(
                "provision: booting with the image's defaults; trying again in the background")
            spawnSelf(
                ["provision", "--retry", "--url", text] + (digest.map { ["--sha256", $0] } ?? []))
        }
        if case .refused = outcome { throw ExitCode(1) }
    }

    enum Problem: Error, CustomStringConvertible {
        case message(String)
        var description: String {
            switch self {
            case .message(let text): return text
            }
        }
    }

    private func makeProvision(url text: String, digest: String?) -> Result<Provision, Problem> {
        let url: FetchURL
        do {
            url = try FetchURL(text)
        } catch {
            return .failure(.message("\(error)"))
        }
        if let digest, !Provision.isDigest(digest) {
            return .failure(.message("proxenos.config.sha256=\(digest) is not 64 hex digits"))
        }
        let trust: TLSTrust
        if digest != nil {
            // The digest authenticates the bundle whoever serves it.
            trust = .contentPinned
        } else {
            if url.scheme == .https && !Files.exists(caFile) {
                return .failure(
                    .message(
                        "no CA certificates at \(caFile) to verify \(url.host); "
                            + "pin the bundle with proxenos.config.sha256="))
            }
            trust = .authorities(file: caFile)
        }
        return .success(
            Provision(
                url: url, sha256: digest, fetcher: Fetcher(trust: trust), installer: Installer()))
    }

    /// The console line, provision.done, and what an installed bundle
    /// sets off (the SSH server's restart for new host keys, the guests).
    private func report(_ outcome: Provision.Outcome, provision: Provision) {
        switch outcome {
        case .installed(let bundle, let files):
            BootConsole.say(
                "provision: installed the bundle from \(provision.url): "
                    + (files.isEmpty ? "no files" : files.joined(separator: " ")))
            if bundle.hasHostKeys { restartDropbear() }
            Self.writeDone("installed")
            if !bundle.auto.isEmpty {
                if retry {
                    startGuests(bundle.auto)
                } else {
                    spawnSelf(["provision", "--start-auto"] + bundle.auto)
                }
            }
        case .refused(let why):
            BootConsole.say("provision: REFUSED the bundle: \(why)")
            BootConsole.say("provision: booting with the image's defaults")
            Self.writeDone("refused")
        case .unreachable(let why):
            BootConsole.say("provision: cannot fetch the bundle: \(why)")
            if !retry { Self.writeDone("unreachable") }
        }
    }

    /// In the background: again after 5 s, doubling to at most 5 minutes,
    /// until the bundle is installed or refused.
    private func retryUntilDone(_ provision: Provision) {
        var delay: UInt32 = 5
        var tries = 1
        while true {
            sleep(delay)
            tries += 1
            let outcome = provision.attempt()
            if case .unreachable(let why) = outcome {
                // The console heard it once; the log hears every try.
                print("provision: try \(tries): \(why); again in \(min(delay * 2, 300)) s")
                fflushStandardOutput()
                delay = min(delay * 2, 300)
                continue
            }
            report(outcome, provision: provision)
            return
        }
    }

    /// The `auto` guests, once xend answers, one `xm create NAME` each.
    private func startGuests(_ names: [String]) {
        var waited = 0
        while !Files.exists(Self.xendSocket) && waited < 600 {
            usleep(500_000)
            waited += 1
        }
        for name in names {
            guard Bundle.isConfigName(name), Files.exists("/etc/xen/\(name)") else {
                BootConsole.say("provision: auto: no domain config /etc/xen/\(name); not started")
                continue
            }
            let spec = ProcessSpec(
                path: "/usr/sbin/xm", arguments: ["xm", "create", name],
                environment: SystemLayout.environment, streams: .logFile(Self.logPath))
            switch ProcessSpawner.spawn(spec) {
            case .failure(let error):
                BootConsole.say("provision: auto: cannot run xm create \(name): \(error)")
            case .success(let pid):
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                let exit = ExitStatus(waitStatus: status)
                if exit.succeeded {
                    BootConsole.say("provision: auto: started guest \(name)")
                } else {
                    BootConsole.say(
                        "provision: auto: xm create \(name) \(exit) (see \(Self.logPath))")
                }
            }
        }
    }

    /// New host keys are read at the SSH server's start: PID 1 respawns
    /// it after this SIGTERM.
    private func restartDropbear() {
        guard let text = Files.readIfPresent(Self.dropbearPid)?.split(separator: "\n").first,
            let pid = Int32(text.filter { $0 != " " }), pid > 1, kill(pid, 0) == 0
        else { return }
        kill(pid, SIGTERM)
        BootConsole.say("provision: new SSH host keys; restarting dropbear (pid \(pid))")
    }

    private func spawnSelf(_ arguments: [String]) {
        let spec = ProcessSpec(
            path: "/bin/proxenos", arguments: ["/bin/proxenos"] + arguments,
            environment: SystemLayout.environment, streams: .logFile(Self.logPath))
        if case .failure(let error) = ProcessSpawner.spawn(spec) {
            BootConsole.say("provision: cannot start \(arguments.joined(separator: " ")): \(error)")
        }
    }

    static func writeDone(_ word: String) {
        try? Files.makeDirectories("/run/proxenos")
        let temporary = donePath + ".new"
        do {
            try Files.write(temporary, word + "\n")
            rename(temporary, donePath)
        } catch {
            BootConsole.say("provision: cannot write \(donePath): \(error)")
        }
    }
}

private func fflushStandardOutput() {
    fflush(nil)
}
