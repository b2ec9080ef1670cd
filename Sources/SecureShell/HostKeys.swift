/// The SSH host key types dropbear serves, each in its own file under the
/// key directory (`/etc/dropbear/dropbear_TYPE_host_key`, dropbear's format).
public enum HostKeyType: String, CaseIterable, Sendable {
    case rsa
    case ecdsa
    case ed25519

    /// The file name dropbear's packaging uses, which a provisioning bundle
    /// carries too.
    public var fileName: String { "dropbear_\(rawValue)_host_key" }

    /// The path of this key in a directory.
    public func path(in directory: String) -> String { "\(directory)/\(fileName)" }
}

/// A host key's public half and fingerprint, as dropbearkey prints them.
public struct HostKeyFingerprint: Sendable, Equatable {
    /// The public key line (`ssh-ed25519 AAAA... root@host`), as in
    /// authorized_keys or known_hosts.
    public var publicKey: String
    /// `SHA256:` and the unpadded base64 of the key blob's SHA-256: what
    /// `ssh-keygen -lf` and the ssh client show.
    public var fingerprint: String

    public init(publicKey: String, fingerprint: String) {
        self.publicKey = publicKey
        self.fingerprint = fingerprint
    }

    /// The key's algorithm as `ssh-keygen -l` names it in parentheses
    /// (`ED25519`, `RSA`, `ECDSA`), from the public key line.
    public var algorithm: String {
        let name = publicKey.split(separator: " ").first.map(String.init) ?? ""
        switch name {
        case "ssh-ed25519": return "ED25519"
        case "ssh-rsa": return "RSA"
        case "ssh-dss": return "DSA"
        default: return name.hasPrefix("ecdsa-sha2-") ? "ECDSA" : name.uppercased()
        }
    }

    /// Reads dropbearkey's report (`-y -f KEY`, or what it prints after
    /// making a key): the line starting with a key algorithm and the
    /// `Fingerprint: SHA256:...` line. Nil when either is missing or the
    /// fingerprint is not a SHA-256 one.
    public static func parse(dropbearkeyOutput text: String) -> HostKeyFingerprint? {
        var publicKey: String?
        var fingerprint: String?
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = String(raw)
            if publicKey == nil, Self.isPublicKeyLine(line) {
                publicKey = line
            } else if line.hasPrefix("Fingerprint: ") {
                let value = String(line.dropFirst("Fingerprint: ".count))
                if Self.isSHA256Fingerprint(value) { fingerprint = value }
            }
        }
        guard let publicKey, let fingerprint else { return nil }
        return HostKeyFingerprint(publicKey: publicKey, fingerprint: fingerprint)
    }

    /// `ALGORITHM BASE64 [COMMENT]` with a known algorithm prefix.
    static func isPublicKeyLine(_ line: String) -> Bool {
        let fields = line.split(separator: " ")
        guard fields.count >= 2 else { return false }
        let algorithm = fields[0]
        guard algorithm.hasPrefix("ssh-") || algorithm.hasPrefix("ecdsa-sha2-") else {
            return false
        }
        return fields[1].allSatisfy(Self.isBase64)
    }

    /// `SHA256:` and 43 base64 characters (32 bytes, padding dropped).
    static func isSHA256Fingerprint(_ value: String) -> Bool {
        guard value.hasPrefix("SHA256:") else { return false }
        let digest = value.dropFirst("SHA256:".count)
        return digest.count == 43 && digest.allSatisfy { Self.isBase64($0) && $0 != "=" }
    }

    static func isBase64(_ character: Character) -> Bool {
        switch character {
        case "A"..."Z", "a"..."z", "0"..."9", "+", "/", "=": return true
        default: return false
        }
    }

    /// The console line for this key: the fingerprint in the form the ssh
    /// client and `ssh-keygen -lf` show it, the algorithm as they name it.
    public func consoleLine(origin: String) -> String {
        "ssh: host key \(fingerprint) (\(algorithm)), \(origin)"
    }
}

/// What the launcher does with one host key file.
public enum HostKeyAction: Sendable, Equatable {
    /// The file exists and dropbearkey reads it: serve it.
    case use
    /// No file: make one (first boot, or a bundle without this type).
    case make
    /// The file exists but dropbearkey cannot read it: move it aside to
    /// the given path (kept for the admin) and make a new one.
    case setAsideAndMake(String)
}

/// Decides the action for a key file from what is known of it.
public enum HostKeyPlan {
    /// `readable`: nil when the file is missing, else whether dropbearkey
    /// could read it. `taken`: whether a set-aside path is already in use
    /// (so an earlier rejected file is never overwritten).
    public static func action(
        path: String, readable: Bool?, taken: (String) -> Bool
    ) -> HostKeyAction {
        switch readable {
        case nil: return .make
        case true?: return .use
        case false?: return .setAsideAndMake(setAsidePath(for: path, taken: taken))
        }
    }

    /// `PATH.rejected`, or `PATH.rejected.N` for the first free N.
    public static func setAsidePath(for path: String, taken: (String) -> Bool) -> String {
        let base = "\(path).rejected"
        if !taken(base) { return base }
        var number = 1
        while taken("\(base).\(number)") { number += 1 }
        return "\(base).\(number)"
    }
}
