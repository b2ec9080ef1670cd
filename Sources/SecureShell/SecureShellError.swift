/// What can go wrong preparing the SSH server, in words an admin can act on.
public enum SecureShellError: Error, Equatable, CustomStringConvertible {
    /// dropbearkey's output lacked the public key or the SHA-256 fingerprint.
    case unreadableKeyOutput(path: String, output: String)
    /// dropbearkey could not read a host key file (a corrupt or foreign file).
    case unusableHostKey(path: String, reason: String)
    /// dropbearkey failed to make a key.
    case keyGenerationFailed(path: String, reason: String)
    /// A program could not be started or run.
    case couldNotRun(String, reason: String)
    /// No host key at all could be read or made: dropbear cannot start.
    case noHostKeys(directory: String)

    public var description: String {
        switch self {
        case .unreadableKeyOutput(let path, let output):
            return "dropbearkey printed no public key and SHA256 fingerprint for \(path): "
                + Self.clip(output)
        case .unusableHostKey(let path, let reason):
            return "host key \(path) is not a dropbear key dropbearkey can read: "
                + Self.clip(reason)
        case .keyGenerationFailed(let path, let reason):
            return "could not make host key \(path): \(Self.clip(reason))"
        case .couldNotRun(let command, let reason):
            return "could not run \(command): \(reason)"
        case .noHostKeys(let directory):
            return "no usable SSH host key in \(directory) and none could be made; "
                + "dropbear cannot start"
        }
    }

    /// One line of at most 200 characters, for the console.
    static func clip(_ text: String) -> String {
        let line = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map(String.init).joined(separator: " / ")
        return line.count > 200 ? String(line.prefix(200)) + "..." : line
    }
}
