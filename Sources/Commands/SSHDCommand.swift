import ArgumentParser
import LinuxSystem
import SecureShell

#if canImport(Glibc)
    import Glibc
#endif

/// `sshd`: the SSH service PID 1 supervises. Waits for provisioning, reads
/// the host keys in /etc/dropbear or makes the missing ones, prints their
/// fingerprints on the console, then becomes Debian's dropbear with key-only
/// logins.
struct SSHDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sshd",
        abstract: "Prepares the SSH host keys and runs dropbear (key-only logins).",
        discussion: """
            Host keys: /etc/dropbear/dropbear_{rsa,ecdsa,ed25519}_host_key when present (a \
            provisioning bundle's), otherwise made now; a file dropbearkey cannot read is moved \
            to NAME.rejected and replaced. Logins: the keys in /root/.ssh/authorized_keys, no \
            passwords. dropbear's pid is in /run/dropbear.pid.
            """)

    @Option(help: "Seconds to wait for /run/proxenos/provision.done before starting anyway.")
    var provisionWait = 90

    @Option(help: "The TCP port dropbear listens on.")
    var port = 22

    @Option(help: "Where the host keys are.")
    var keyDirectory = SSHSettings().keyDirectory

    func run() throws {
        var settings = SSHSettings()
        settings.provisionWait = .seconds(max(0, provisionWait))
        settings.provisioned = Dom0Provisioning.isProvisioned
        settings.port = port
        settings.keyDirectory = keyDirectory
        let console = open(settings.console, O_WRONLY | O_NOCTTY | O_CLOEXEC)
        let server = SSHServer(settings: settings) { line in
            Self.write(1, line)
            if console >= 0 { Self.write(console, "proxenos: " + line) }
        }
        do {
            try server.run()
        } catch {
            Self.write(1, "ssh: \(error)")
            if console >= 0 { Self.write(console, "proxenos: ssh: \(error)") }
            throw ExitCode.failure
        }
    }

    /// One line, whole, to a descriptor (the console or the service log).
    static func write(_ fd: Int32, _ line: String) {
        var bytes = Array((line + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.write(fd, $0.baseAddress, $0.count)
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
        bytes.removeAll()
    }
}
