import Foundation
import Testing

@testable import Provisioner
@testable import Provisioning

/// A one-connection-at-a-time HTTP server on 127.0.0.1 (a real TCP socket)
/// answering every request with the canned bytes for its path.
final class CannedServer: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let responses: [String: [UInt8]]
    private let lock = NSLock()
    private var requestLog: [String] = []

    init(_ responses: [String: [UInt8]]) throws {
        self.responses = responses
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        guard bound == 0, listen(listener, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = getsockname(listener, $0, &length)
            }
        }
        self.listener = listener
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var requests: [String] { lock.withLock { requestLog } }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !request.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
                let count = recv(client, &buffer, buffer.count, 0)
                if count <= 0 { break }
                request += buffer.prefix(count)
            }
            let line = String(decoding: request.prefix(while: { $0 != 0x0d }), as: UTF8.self)
            lock.withLock { requestLog.append(line) }
            let path = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            let answer =
                responses[path] ?? Array("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".utf8)
            _ = answer.withUnsafeBytes {
                send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            close(client)
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

func ok(_ body: [UInt8]) -> [UInt8] {
    Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "provisioner-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func goodBundle() -> [UInt8] {
    var tar = TarBuilder()
    tar.file("xend-config.sxp", "(network-script network-bridge)\n")
    tar.file("xen/web", "name = \"web\"\n")
    tar.file("auto", "web\n")
    tar.file("ssh/authorized_keys", "ssh-ed25519 AAAA test\n")
    tar.file("ssh/dropbear_rsa_host_key", "KEY")
    return tar.finished()
}

@Suite("provisioning: fetch, digest, install", .serialized)
struct ProvisionerTests {
    @Test func fetchesOverTCPAndFollowsARedirect() throws {
        let body = goodBundle()
        let server = try CannedServer([
            "/b.tar": ok(body),
            "/old": Array(
                "HTTP/1.1 302 Found\r\nLocation: /b.tar\r\nContent-Length: 0\r\n\r\n".utf8),
        ])
        defer { server.stop() }
        let fetcher = Fetcher(trust: .contentPinned)
        #expect(try fetcher.fetch(FetchURL("http://127.0.0.1:\(server.port)/old")) == body)
        #expect(server.requests == ["GET /old HTTP/1.1", "GET /b.tar HTTP/1.1"])
        #expect(
            throws: FetchError.unreachable(
                "http://127.0.0.1:\(server.port)/none: HTTP 404 Not Found")
        ) {
            try fetcher.fetch(FetchURL("http://127.0.0.1:\(server.port)/none"))
        }
    }

    @Test func aClosedPortIsUnreachable() throws {
        let server = try CannedServer([:])
        let port = server.port
        server.stop()
        let fetcher = Fetcher(trust: .contentPinned)
        do {
            _ = try fetcher.fetch(FetchURL("http://127.0.0.1:\(port)/x"))
            Issue.record("fetched from a closed port")
        } catch {
            guard case .unreachable(let why) = error as? FetchError else {
                Issue.record("not unreachable: \(error)")
                return
            }
            #expect(why.contains("refused"))
        }
    }

    @Test func installsWithModesAndReplacesSymlinksWithoutFollowing() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = goodBundle()
        let bundle = try Bundle.plan(archive: archive)
        // A symlink where a config goes must be replaced, not written through.
        try FileManager.default.createDirectory(
            atPath: root + "/etc/xen", withIntermediateDirectories: true)
        try "precious\n".write(toFile: root + "/precious", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: root + "/etc/xen/web", withDestinationPath: root + "/precious")
        let installer = Installer(root: root, staging: root + "/staging")
        let written = try installer.install(bundle, archive: archive)
        #expect(written.count == 4)
        #expect(try String(contentsOfFile: root + "/precious", encoding: .utf8) == "precious\n")
        #expect(
            try String(contentsOfFile: root + "/etc/xen/web", encoding: .utf8) == "name = \"web\"\n"
        )
        let attributes = try FileManager.default.attributesOfItem(atPath: root + "/etc/xen/web")
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        func mode(_ path: String) throws -> Int {
            (try FileManager.default.attributesOfItem(atPath: root + path)[.posixPermissions]
                as? Int) ?? -1
        }
        #expect(try mode("/root/.ssh") == 0o700)
        #expect(try mode("/root/.ssh/authorized_keys") == 0o600)
        #expect(try mode("/etc/dropbear/dropbear_rsa_host_key") == 0o600)
        #expect(try mode("/etc/xen/xend-config.sxp") == 0o644)
        #expect(!FileManager.default.fileExists(atPath: root + "/staging"))
    }

    func attempt(_ archive: [UInt8], sha256: String?, root: String) throws -> Provision.Outcome {
        let server = try CannedServer(["/b.tar": ok(archive)])
        defer { server.stop() }
        let provision = Provision(
            url: try FetchURL("http://127.0.0.1:\(server.port)/b.tar"), sha256: sha256,
            fetcher: Fetcher(trust: .contentPinned),
            installer: Installer(root: root, staging: root + "/staging"))
        return provision.attempt()
    }

    @Test func digestPinsTheBundle() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let archive = goodBundle()
        let wrong = String(repeating: "0", count: 64)
        guard case .refused(let why) = try attempt(archive, sha256: wrong, root: root) else {
            Issue.record("a wrong digest was not refused")
            return
        }
        #expect(why.contains("SHA-256 mismatch"))
        #expect(why.contains(sha256Hex(archive)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
        guard
            case .installed(let bundle, _) = try attempt(
                archive, sha256: sha256Hex(archive).uppercased(), root: root)
        else {
            Issue.record("the right digest was refused")
            return
        }
        #expect(bundle.auto == ["web"])
    }

    @Test func anEscapingMemberRefusesEverything() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var tar = TarBuilder()
        tar.file("xen/web", "name = \"web\"\n")
        tar.file("../etc/passwd", "root::0:0::/:/bin/sh\n")
        guard case .refused(let why) = try attempt(tar.finished(), sha256: nil, root: root) else {
            Issue.record("an escaping bundle was not refused")
            return
        }
        #expect(why.contains("../etc/passwd"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func aServerThatIsNotThereIsUnreachableAndNothingIsInstalled() throws {
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let closed = try CannedServer([:])
        let port = closed.port
        closed.stop()
        let provision = Provision(
            url: try FetchURL("http://127.0.0.1:\(port)/b.tar"), sha256: nil,
            fetcher: Fetcher(trust: .contentPinned),
            installer: Installer(root: root, staging: root + "/staging"))
        guard case .unreachable = provision.attempt() else {
            Issue.record("a closed port was not unreachable")
            return
        }
        #expect(provision.attempt().word == "unreachable")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            sha256Hex(Array("abc".utf8))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

/// Bundles made by the tools an admin uses: GNU tar (its default format)
/// and Python's tarfile (pax), read by our reader.
@Suite("bundles from real tar writers")
struct RealTarTests {
    func run(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(arguments) failed")
    }

    func tree() throws -> String {
        let root = try temporaryDirectory()
        let manager = FileManager.default
        try manager.createDirectory(atPath: root + "/b/xen", withIntermediateDirectories: true)
        try manager.createDirectory(atPath: root + "/b/ssh", withIntermediateDirectories: true)
        try "name = \"web\"\n".write(
            toFile: root + "/b/xen/web", atomically: false, encoding: .utf8)
        try "web\n".write(toFile: root + "/b/auto", atomically: false, encoding: .utf8)
        try "ssh-ed25519 AAAA k\n".write(
            toFile: root + "/b/ssh/authorized_keys", atomically: false, encoding: .utf8)
        return root
    }

    @Test(arguments: ["gnu", "pax", "ustar"])
    func gnuTar(_ format: String) throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try run(
            ["tar", "--format=\(format)", "-C", root + "/b", "-cf", root + "/b.tar", "."], in: root)
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/b.tar")))
        let bundle = try Bundle.plan(archive: archive)
        #expect(Set(bundle.files.map(\.target)) == ["/etc/xen/web", "/root/.ssh/authorized_keys"])
        #expect(bundle.auto == ["web"])
    }

    @Test func pythonTarfile() throws {
        let root = try tree()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try run(
            [
                "python3", "-c",
                "import tarfile; t = tarfile.open('b.tar', 'w', format=tarfile.PAX_FORMAT); "
                    + "t.add('b/xen', 'xen'); t.add('b/auto', 'auto'); t.close()",
            ], in: root)
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/b.tar")))
        let bundle = try Bundle.plan(archive: archive)
        #expect(bundle.files.map(\.target) == ["/etc/xen/web"])
        #expect(bundle.auto == ["web"])
    }
}

/// HTTPS against a real `openssl s_server -WWW` on 127.0.0.1 with a
/// certificate from a CA the test makes: verified against that CA, refused
/// against another CA or for another name, accepted unverified when pinned.
@Suite("HTTPS through OpenSSL", .serialized)
struct TLSTests {
    static func openssl(_ arguments: [String], in directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw POSIXError(.EINVAL) }
    }

    /// ca.pem/other.pem, and server.pem/server.key for CN and SAN "boot.test"
    /// and IP 127.0.0.1, signed by ca.
    static func makeCertificates(in directory: String) throws {
        for name in ["ca", "other"] {
            try openssl(
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "\(name).key",
                    "-out",
                    "\(name).pem", "-days", "2", "-subj", "/CN=Proxenos test \(name)",
                ], in: directory)
        }
        try openssl(
            [
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
                "server.csr",
                "-subj", "/CN=boot.test",
            ], in: directory)
        try "subjectAltName=DNS:boot.test,IP:127.0.0.1\n".write(
            toFile: directory + "/san.ext", atomically: false, encoding: .utf8)
        try openssl(
            [
                "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
            ], in: directory)
    }

    static func freePort() throws -> UInt16 {
        let server = try CannedServer([:])
        defer { server.stop() }
        return server.port
    }

    @Test func verifiesAgainstTheCAAndTheName() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.makeCertificates(in: directory)
        let body = goodBundle()
        try Data(body).write(to: URL(fileURLWithPath: directory + "/b.tar"))
        let port = try Self.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        server.arguments = [
            "s_server", "-accept", "127.0.0.1:\(port)", "-cert", "server.pem", "-key", "server.key",
            "-WWW", "-quiet",
        ]
        server.currentDirectoryURL = URL(fileURLWithPath: directory)
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            // SIGKILL: the test runner's thread has SIGTERM blocked, and
            // the child inherits that mask.
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        let url = try FetchURL("https://127.0.0.1:\(port)/b.tar")
        // s_server needs a moment to listen.
        var fetched: [UInt8]?
        for _ in 0..<50 {
            if let bytes = try? Fetcher(trust: .authorities(file: directory + "/ca.pem")).fetch(url)
            {
                fetched = bytes
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(fetched == body)
        #expect(try Fetcher(trust: .contentPinned).fetch(url) == body)
        do {
            _ = try Fetcher(trust: .authorities(file: directory + "/other.pem")).fetch(url)
            Issue.record("a certificate from an unknown CA was accepted")
        } catch {
            guard case .untrusted(let why) = error as? FetchError else {
                Issue.record("not untrusted: \(error)")
                return
            }
            #expect(why.contains("certificate not trusted"))
        }
        // The certificate names boot.test and 127.0.0.1, not localhost.
        let wrongName = try FetchURL("https://localhost:\(port)/b.tar")
        do {
            _ = try Fetcher(trust: .authorities(file: directory + "/ca.pem")).fetch(wrongName)
            Issue.record("a certificate for another name was accepted")
        } catch {
            guard case .untrusted = error as? FetchError else {
                Issue.record("not untrusted: \(error)")
                return
            }
        }
    }
}
