import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A host key file dropbear will serve.
public struct ServedKey: Sendable, Equatable {
    public var path: String
    public var key: HostKeyFingerprint
    /// Made by this launcher, rather than found (from a bundle or an
    /// earlier start since boot).
    public var made: Bool
}

/// Prepares and starts dropbear: waits for provisioning, reads or makes the
/// host keys, prints their fingerprints on the console, checks
/// authorized_keys, then becomes dropbear (exec, so PID 1 supervises
/// dropbear itself).
public struct SSHServer {
    public var settings: SSHSettings
    /// Lines for the admin: the console and the service log.
    private let say: (String) -> Void

    public init(settings: SSHSettings, say: @escaping (String) -> Void) {
        self.settings = settings
        self.say = say
    }

    /// Waits until the provisioning marker exists or the wait is over;
    /// returns its content (the provisioning outcome), or nil on timeout.
    public func waitForProvisioning() -> String? {
        guard Files.waitUntilExists(settings.provisionMarker, timeout: settings.provisionWait)
        else { return nil }
        return (Files.readIfPresent(settings.provisionMarker) ?? "")
            .split(whereSeparator: { $0 == "\n" || $0 == " " }).first.map(String.init) ?? ""
    }

    /// Every host key the settings name, read or made; the paths to serve
    /// with their fingerprints. Keys that can be neither are reported and
    /// left out.
    public func prepareHostKeys() throws(SecureShellError) -> [ServedKey] {
        let directory = settings.keyDirectory
        do {
            try Files.makeDirectories(directory, mode: 0o700)
        } catch {
            say("ssh: cannot create \(directory): \(error)")
        }
        _ = chmod(directory, 0o700)
        var served: [ServedKey] = []
        for type in settings.keyTypes {
            let path = type.path(in: directory)
            var readable: Bool?
            var existing: HostKeyFingerprint?
            var rejection = ""
            if Files.exists(path) {
                switch readKey(path) {
                case .success(let key):
                    readable = true
                    existing = key
                case .failure(let error):
                    readable = false
                    rejection = "\(error)"
                }
            }
            switch HostKeyPlan.action(path: path, readable: readable, taken: Files.exists) {
            case .use:
                if let existing { served.append(ServedKey(path: path, key: existing, made: false)) }
                continue
            case .make:
                break
            case .setAsideAndMake(let aside):
                say("ssh: \(rejection); moved to \(aside), making a new \(type.rawValue) key")
                if rename(path, aside) != 0 {
                    say(
                        "ssh: cannot move \(path) aside (\(Errno(rawValue: errno))); "
                            + "serving no \(type.rawValue) key")
                    continue
                }
            }
            switch makeKey(type, path) {
            case .success(let key): served.append(ServedKey(path: path, key: key, made: true))
            case .failure(let error): say("ssh: \(error)")
            }
        }
        if served.isEmpty { throw .noHostKeys(directory: directory) }
        return served
    }

    /// The lines the console gets about authorized_keys.
    public func authorizedKeysReport() -> [String] {
        let path = settings.authorizedKeys
        _ = try? Files.makeDirectories(settings.sshDirectory, mode: 0o700)
        guard Files.exists(path) else {
            return ["ssh: no \(path): nobody can log in over SSH (key-only logins)"]
        }
        let count = AuthorizedKeys.keyCount(Files.readIfPresent(path) ?? "")
        var lines = ["ssh: \(count) authorized key(s) in \(path); password logins are off"]
        var entries: [AuthorizedKeys.Entry] = []
        for entry in [settings.home, settings.sshDirectory, path] {
            var info = stat()
            if stat(entry, &info) == 0 {
                entries.append(
                    AuthorizedKeys.Entry(
                        path: entry, mode: UInt32(info.st_mode), owner: UInt32(info.st_uid)))
            }
        }
        lines += AuthorizedKeys.permissionProblems(entries, uid: settings.uid).map {
            "ssh: \($0)"
        }
        return lines
    }

    /// Prepares everything, says what dropbear will serve, and becomes
    /// dropbear. Returns only by throwing.
    public func run() throws(SecureShellError) -> Never {
        let waitSeconds = settings.provisionWait.components.seconds
        if !settings.provisioned {
            // No bundle comes this boot: nothing to wait for.
        } else if let outcome = waitForProvisioning() {
            say("ssh: provisioning done (\(outcome.isEmpty ? "no outcome given" : outcome))")
        } else {
            say(
                "ssh: no \(settings.provisionMarker) after \(waitSeconds) s; "
                    + "starting with the keys this host has")
        }
        let keys = try prepareHostKeys()
        for served in keys {
            say(served.key.consoleLine(origin: served.made ? "made now" : "from \(served.path)"))
        }
        for line in authorizedKeysReport() { say(line) }
        let arguments = settings.dropbearArguments(keys: keys.map(\.path))
        say("ssh: starting dropbear on port \(settings.port)")
        let error = ProcessSpawner.execute(path: settings.dropbear, arguments: arguments)
        throw .couldNotRun(settings.dropbear, reason: "\(error)")
    }

    // MARK: dropbearkey

    func readKey(_ path: String) -> Result<HostKeyFingerprint, SecureShellError> {
        switch capture([settings.dropbearkey, "-y", "-f", path]) {
        case .failure(let error):
            return .failure(error)
        case .success(let (succeeded, output)):
            guard succeeded else { return .failure(.unusableHostKey(path: path, reason: output)) }
            guard let key = HostKeyFingerprint.parse(dropbearkeyOutput: output) else {
                return .failure(.unreadableKeyOutput(path: path, output: output))
            }
            return .success(key)
        }
    }

    func makeKey(_ type: HostKeyType, _ path: String) -> Result<
        HostKeyFingerprint, SecureShellError
    > {
        switch capture([settings.dropbearkey, "-t", type.rawValue, "-f", path]) {
        case .failure(let error):
            return .failure(error)
        case .success(let (succeeded, output)):
            guard succeeded else {
                return .failure(.keyGenerationFailed(path: path, reason: output))
            }
            guard let key = HostKeyFingerprint.parse(dropbearkeyOutput: output) else {
                return .failure(.unreadableKeyOutput(path: path, output: output))
            }
            // A new key file is the server's secret: owner only.
            _ = chmod(path, 0o600)
            return .success(key)
        }
    }

    /// Runs a program with stdout and stderr in a scratch file; whether it
    /// exited 0, and what it printed.
    func capture(_ argv: [String]) -> Result<(Bool, String), SecureShellError> {
        let command = argv.joined(separator: " ")
        let output = "\(settings.scratchDirectory)/sshd-\(getpid()).out"
        _ = try? Files.makeDirectories(settings.scratchDirectory)
        unlink(output)
        defer { unlink(output) }
        let spec = ProcessSpec(
            path: argv[0], arguments: argv, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            streams: .logFile(output))
        let pid: pid_t
        switch ProcessSpawner.spawn(spec) {
        case .success(let child): pid = child
        case .failure(let error): return .failure(.couldNotRun(command, reason: "\(error)"))
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR {
                return .failure(.couldNotRun(command, reason: "\(Errno(rawValue: errno))"))
            }
        }
        // WIFEXITED and WEXITSTATUS, spelled out (the C macros are not
        // visible to Swift).
        let exitedZero = status & 0x7f == 0 && (status >> 8) & 0xff == 0
        return .success((exitedZero, Files.readIfPresent(output) ?? ""))
    }
}
