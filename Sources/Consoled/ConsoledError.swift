import SystemPackage

/// What went wrong in consoled or its client, in words an admin can act on.
public enum ConsoledError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed.
    case system(operation: String, errno: Errno)
    /// The peer broke the socket protocol (a bad frame, a frame out of
    /// order, one too long).
    case protocolViolation(String)
    /// consoled refused the attach (unknown domain, bad request).
    case refused(String)
    /// consoled's socket is not there or not answering.
    case notRunning(path: String, reason: String)
    /// The Xen side of a console failed (mapping, event channel, store).
    case xen(String)

    public var description: String {
        switch self {
        case .system(let operation, let errno): return "\(operation): \(errno)"
        case .protocolViolation(let text): return "console protocol: \(text)"
        case .refused(let text): return text
        case .notRunning(let path, let reason):
            return "consoled does not answer on \(path) (\(reason)); is it running?"
        case .xen(let text): return text
        }
    }
}
