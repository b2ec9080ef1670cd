import Foundation
import Testing

@testable import SecureShell

/// What Debian's dropbearkey 2022.83 printed making an ed25519 key.
private let madeOutput = """
    Generating 256 bit ed25519 key, this may take a while...
    Public key portion is:
    ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrZxcXET7zRP3uN+MSUrbHer4AbsLstqgkPGzo2GtiR root@vm
    Fingerprint: SHA256:aZG9MB20VJGrZdwu7iWxW84BAQmnx6b4ZkVlnYn3LeM

    """

@Suite struct HostKeyFingerprintTests {
    @Test func readsDropbearkeysReport() throws {
        let key = try #require(HostKeyFingerprint.parse(dropbearkeyOutput: madeOutput))
        #expect(
            key.publicKey
                == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrZxcXET7zRP3uN+MSUrbHer4AbsLstqgkPGzo2GtiR root@vm"
        )
        #expect(key.fingerprint == "SHA256:aZG9MB20VJGrZdwu7iWxW84BAQmnx6b4ZkVlnYn3LeM")
        #expect(key.algorithm == "ED25519")
        #expect(
            key.consoleLine(origin: "made now")
                == "ssh: host key SHA256:aZG9MB20VJGrZdwu7iWxW84BAQmnx6b4ZkVlnYn3LeM (ED25519), made now"
        )
    }

    @Test func namesAlgorithmsAsSshKeygenDoes() {
        let fingerprint = "SHA256:" + String(repeating: "a", count: 43)
        for (line, name) in [
            ("ssh-rsa AAAAB3NzaC1yc2E= x", "RSA"),
            ("ecdsa-sha2-nistp256 AAAAE2VjZHNh x", "ECDSA"),
            ("ecdsa-sha2-nistp521 AAAAE2VjZHNh", "ECDSA"),
        ] {
            let key = HostKeyFingerprint.parse(
                dropbearkeyOutput: "Public key portion is:\n\(line)\nFingerprint: \(fingerprint)\n")
            #expect(key?.algorithm == name)
        }
    }

    @Test func refusesReportsWithoutBothParts() {
        // No fingerprint line; an MD5 one (older dropbear); a digest of the
        // wrong length; no public key; an error message.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJrZ root@vm"
        for text in [
            "Public key portion is:\n\(key)\n",
            "\(key)\nFingerprint: md5 3a:5e:aa:01:9d:6f:1d:44:58:b1:62:11:44:53:8b:30\n",
            "\(key)\nFingerprint: SHA256:aZG9MB20VJGrZdwu7iWxW84BAQmnx6b4ZkVlnYn3Le\n",
            "Fingerprint: SHA256:aZG9MB20VJGrZdwu7iWxW84BAQmnx6b4ZkVlnYn3LeM\n",
            "Failed reading '/etc/dropbear/dropbear_rsa_host_key'\nExited: String too long\n",
            "",
        ] {
            #expect(HostKeyFingerprint.parse(dropbearkeyOutput: text) == nil, "\(text)")
        }
    }

    @Test func aReportReadByteByByteIsTheSameOnlyWhenWhole() {
        // Every proper prefix that cuts the fingerprint line short is refused.
        let text = madeOutput.trimmingCharacters(in: .newlines)
        let whole = HostKeyFingerprint.parse(dropbearkeyOutput: text)
        #expect(whole != nil)
        for length in 0..<text.count {
            let prefix = String(text.prefix(length))
            #expect(HostKeyFingerprint.parse(dropbearkeyOutput: prefix) == nil)
        }
    }
}

@Suite struct HostKeyPlanTests {
    let path = "/etc/dropbear/dropbear_rsa_host_key"

    @Test func missingIsMadeReadableIsUsed() {
        #expect(HostKeyPlan.action(path: path, readable: nil, taken: { _ in false }) == .make)
        #expect(HostKeyPlan.action(path: path, readable: true, taken: { _ in false }) == .use)
    }

    @Test func anUnreadableFileIsSetAsideNeverOverAnEarlierOne() {
        #expect(
            HostKeyPlan.action(path: path, readable: false, taken: { _ in false })
                == .setAsideAndMake("\(path).rejected"))
        let taken: Set = ["\(path).rejected", "\(path).rejected.1"]
        #expect(
            HostKeyPlan.action(path: path, readable: false, taken: { taken.contains($0) })
                == .setAsideAndMake("\(path).rejected.2"))
    }

    @Test func keyFilesAreDropbearsNames() {
        #expect(
            HostKeyType.allCases.map { $0.path(in: "/etc/dropbear") } == [
                "/etc/dropbear/dropbear_rsa_host_key", "/etc/dropbear/dropbear_ecdsa_host_key",
                "/etc/dropbear/dropbear_ed25519_host_key",
            ])
    }
}

@Suite struct AuthorizedKeysTests {
    @Test func countsKeyLinesOnly() {
        let text = """
            # the admins
            ssh-ed25519 AAAAC3Nza one@host

              ssh-rsa AAAAB3Nza two@host
            \t# indented comment
            restrict,command="xm list" ssh-ed25519 AAAAC3Nza three@host
            """
        #expect(AuthorizedKeys.keyCount(text) == 3)
        #expect(AuthorizedKeys.keyCount("") == 0)
    }

    @Test func namesWhatDropbearWouldRefuse() {
        let entries = [
            AuthorizedKeys.Entry(path: "/root", mode: 0o40700, owner: 0),
            AuthorizedKeys.Entry(path: "/root/.ssh", mode: 0o40775, owner: 0),
            AuthorizedKeys.Entry(path: "/root/.ssh/authorized_keys", mode: 0o100644, owner: 1000),
        ]
        let problems = AuthorizedKeys.permissionProblems(entries, uid: 0)
        #expect(problems.count == 2)
        #expect(problems[0].hasPrefix("/root/.ssh is writable by group or others (mode 775)"))
        #expect(problems[1].hasPrefix("/root/.ssh/authorized_keys is owned by uid 1000"))
        #expect(
            AuthorizedKeys.permissionProblems(
                [AuthorizedKeys.Entry(path: "/root/.ssh", mode: 0o40700, owner: 0)], uid: 0
            ).isEmpty)
    }
}

@Suite struct SSHSettingsTests {
    @Test func dropbearRunsInTheForegroundWithoutPasswords() {
        var settings = SSHSettings()
        settings.port = 2222
        #expect(
            settings.dropbearArguments(keys: ["/k/a", "/k/b"]) == [
                "/usr/sbin/dropbear", "-F", "-E", "-s", "-g", "-P", "/run/dropbear.pid", "-p",
                "2222", "-r", "/k/a", "-r", "/k/b",
            ])
        #expect(settings.authorizedKeys == "/root/.ssh/authorized_keys")
    }
}

/// Debian's dropbearkey: `make unit` sets DROPBEARKEY to the unpacked one.
private let dropbearkey: String = {
    if let path = ProcessInfo.processInfo.environment["DROPBEARKEY"] { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent("build/dropbear/usr/bin/dropbearkey").path
}()

private let haveDropbearkey = FileManager.default.isExecutableFile(atPath: dropbearkey)

/// A scratch directory, removed at the end.
private func withScratch(_ body: (String) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("sshd-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    try body(directory)
}

private func settings(in directory: String) -> SSHSettings {
    var settings = SSHSettings()
    settings.keyDirectory = "\(directory)/etc/dropbear"
    settings.scratchDirectory = "\(directory)/run"
    settings.provisionMarker = "\(directory)/run/provision.done"
    settings.home = "\(directory)/root"
    settings.uid = getuid()
    settings.dropbearkey = dropbearkey
    return settings
}

/// A collector for the launcher's console lines.
private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func add(_ line: String) { lock.withLock { stored.append(line) } }
    var all: [String] { lock.withLock { stored } }
}

@Suite(
    .enabled(
        if: haveDropbearkey,
        "Debian's dropbearkey is absent: run `make build/dropbear/.unpacked` (or set DROPBEARKEY)"))
struct SSHServerKeyTests {
    @Test("first start makes every key; a restart serves the same ones")
    func makesThenKeeps() throws {
        try withScratch { directory in
            let lines = Lines()
            let server = SSHServer(settings: settings(in: directory), say: lines.add)
            let first = try server.prepareHostKeys()
            #expect(first.map(\.key.algorithm) == ["RSA", "ECDSA", "ED25519"])
            #expect(first.allSatisfy { $0.made })
            for served in first {
                let info = try FileManager.default.attributesOfItem(atPath: served.path)
                #expect((info[.posixPermissions] as? Int) == 0o600)
            }
            let keyDirectory = try FileManager.default.attributesOfItem(
                atPath: "\(directory)/etc/dropbear")
            #expect((keyDirectory[.posixPermissions] as? Int) == 0o700)
            let again = try server.prepareHostKeys()
            #expect(again.map(\.key) == first.map(\.key))
            #expect(again.allSatisfy { !$0.made })
            #expect(lines.all.isEmpty)
        }
    }

    @Test("the fingerprint printed is the one ssh-keygen -lf computes")
    func fingerprintMatchesSshKeygen() throws {
        let keygen = "/usr/bin/ssh-keygen"
        try #require(FileManager.default.isExecutableFile(atPath: keygen), "no ssh-keygen")
        try withScratch { directory in
            let server = SSHServer(settings: settings(in: directory), say: { _ in })
            for served in try server.prepareHostKeys() {
                let publicFile = "\(directory)/key.pub"
                try (served.key.publicKey + "\n").write(
                    toFile: publicFile, atomically: true, encoding: .utf8)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: keygen)
                process.arguments = ["-lf", publicFile]
                let pipe = Pipe()
                process.standardOutput = pipe
                try process.run()
                let output = String(
                    decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                let fields = output.split(separator: " ")
                #expect(fields.count >= 3)
                #expect(fields.dropFirst().first.map(String.init) == served.key.fingerprint)
                #expect(output.hasSuffix("(\(served.key.algorithm))\n"))
            }
        }
    }

    @Test("a provisioned key is served as it is; a corrupt one is kept aside and replaced")
    func provisionedAndCorruptKeys() throws {
        try withScratch { directory in
            let settings = settings(in: directory)
            // The "bundle": a real ed25519 key made beforehand, and garbage
            // where the RSA key should be.
            try FileManager.default.createDirectory(
                atPath: settings.keyDirectory, withIntermediateDirectories: true)
            let ed25519 = HostKeyType.ed25519.path(in: settings.keyDirectory)
            let maker = Process()
            maker.executableURL = URL(fileURLWithPath: dropbearkey)
            maker.arguments = ["-t", "ed25519", "-f", ed25519]
            maker.standardOutput = FileHandle.nullDevice
            maker.standardError = FileHandle.nullDevice
            try maker.run()
            maker.waitUntilExit()
            #expect(maker.terminationStatus == 0)
            let rsa = HostKeyType.rsa.path(in: settings.keyDirectory)
            try "not a key\n".write(toFile: rsa, atomically: true, encoding: .utf8)
            try "an older reject\n".write(
                toFile: "\(rsa).rejected", atomically: true, encoding: .utf8)

            let lines = Lines()
            let served = try SSHServer(settings: settings, say: lines.add).prepareHostKeys()
            #expect(
                served.map(\.path) == [
                    rsa, HostKeyType.ecdsa.path(in: settings.keyDirectory), ed25519,
                ])
            #expect(served.map(\.made) == [true, true, false])
            #expect(
                try String(contentsOfFile: "\(rsa).rejected.1", encoding: .utf8) == "not a key\n")
            #expect(
                try String(contentsOfFile: "\(rsa).rejected", encoding: .utf8)
                    == "an older reject\n")
            #expect(lines.all.count == 1)
            #expect(lines.all.first?.contains("\(rsa) is not a dropbear key") == true)
            #expect(lines.all.first?.contains("moved to \(rsa).rejected.1") == true)
        }
    }

    @Test("no key can be read or made: a clear error")
    func noKeysAtAll() throws {
        try withScratch { directory in
            var settings = settings(in: directory)
            settings.dropbearkey = "\(directory)/missing-dropbearkey"
            let lines = Lines()
            #expect(throws: SecureShellError.noHostKeys(directory: settings.keyDirectory)) {
                try SSHServer(settings: settings, say: lines.add).prepareHostKeys()
            }
            #expect(lines.all.count == 3)
            #expect(lines.all.allSatisfy { $0.contains("could not run") })
        }
    }
}

@Suite struct SSHServerFileTests {
    @Test("authorized_keys: missing, counted, and refused for its modes")
    func authorizedKeysReport() throws {
        try withScratch { directory in
            let settings = settings(in: directory)
            try FileManager.default.createDirectory(
                atPath: settings.home, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            let server = SSHServer(settings: settings, say: { _ in })
            let missing = server.authorizedKeysReport()
            #expect(
                missing == [
                    "ssh: no \(settings.authorizedKeys): nobody can log in over SSH (key-only logins)"
                ])
            let ssh = try FileManager.default.attributesOfItem(atPath: settings.sshDirectory)
            #expect((ssh[.posixPermissions] as? Int) == 0o700)

            try "ssh-ed25519 AAAA a\nssh-rsa AAAA b\n".write(
                toFile: settings.authorizedKeys, atomically: true, encoding: .utf8)
            chmod(settings.authorizedKeys, 0o600)
            #expect(
                server.authorizedKeysReport() == [
                    "ssh: 2 authorized key(s) in \(settings.authorizedKeys); password logins are off"
                ])
            chmod(settings.authorizedKeys, 0o666)
            let report = server.authorizedKeysReport()
            #expect(report.count == 2)
            #expect(report.last?.contains("writable by group or others (mode 666)") == true)
        }
    }

    @Test("the provisioning wait: the outcome when the marker is there, nil after the bound")
    func provisioningWait() throws {
        try withScratch { directory in
            var settings = settings(in: directory)
            settings.provisionWait = .milliseconds(300)
            let server = SSHServer(settings: settings, say: { _ in })
            #expect(server.waitForProvisioning() == nil)
            try FileManager.default.createDirectory(
                atPath: "\(directory)/run", withIntermediateDirectories: true)
            // Written while the launcher waits.
            settings.provisionWait = .seconds(30)
            let waiting = SSHServer(settings: settings, say: { _ in })
            let marker = settings.provisionMarker
            let writer = Thread {
                usleep(300_000)
                try? "installed\n".write(toFile: marker, atomically: true, encoding: .utf8)
            }
            writer.start()
            let started = Date()
            #expect(waiting.waitForProvisioning() == "installed")
            #expect(Date().timeIntervalSince(started) < 20)
        }
    }
}
