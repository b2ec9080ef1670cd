import LinuxSystem
import SystemPackage

/// Everything that can go wrong talking to xenstored.
///
/// Daemon refusals carry the path they concern; local checks (path syntax,
/// payload limits) fail before anything is sent.
public enum XenStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The node does not exist (xenstored's `ENOENT`).
    case noEntry(String)
    /// The connection's domain may not do this to the node (`EACCES`/`EPERM`).
    case permissionDenied(String)
    /// A transaction conflicted with another writer (`EAGAIN`); retry it.
    case again
    /// ``XenStoreClient/transaction(maxAttempts:_:)`` kept conflicting.
    case transactionRetriesExhausted(attempts: Int)
    /// Another errno name from xenstored, with the request it answered.
    case errno(String, request: String)
    /// The peer broke the wire protocol (malformed or oversized message).
    case `protocol`(String)
    /// A request or value over a xenstore limit; nothing was sent.
    case tooLarge(what: String, size: Int, limit: Int)
    /// A path xenstored would refuse; nothing was sent.
    case invalidPath(String, reason: String)
    /// A permission string that is not `n`, `r`, `w` or `b` and a domid.
    case invalidPermission(String)
    /// A request that makes no sense locally (e.g. empty permission list).
    case invalidArgument(String)
    /// The connection is closed (by us, by xenstored, or it broke).
    case closed
    /// A system call on the socket or device failed.
    case system(operation: String, Errno)

    public var description: String {
        switch self {
        case .noEntry(let path):
            return "xenstore: \(path): no such node"
        case .permissionDenied(let path):
            return "xenstore: \(path): permission denied"
        case .again:
            return "xenstore: transaction conflict (EAGAIN), retry"
        case .transactionRetriesExhausted(let attempts):
            return "xenstore: transaction still conflicting after \(attempts) attempts;"
                + " another writer keeps changing the same nodes"
        case .errno(let name, let request):
            return "xenstore: \(request): xenstored answered \(name)"
                + (Self.errnoMeaning[name].map { " (\($0))" } ?? "")
        case .protocol(let what):
            return "xenstore: protocol error: \(what)"
        case .tooLarge(let what, let size, let limit):
            return "xenstore: \(what) is \(size) bytes, over the \(limit)-byte limit"
        case .invalidPath(let path, let reason):
            return "xenstore: invalid path \"\(path)\": \(reason)"
        case .invalidPermission(let text):
            return "xenstore: invalid permission \"\(text)\": expected n, r, w or b and a domid"
                + " (e.g. \"r5\")"
        case .invalidArgument(let what):
            return "xenstore: \(what)"
        case .closed:
            return "xenstore: connection closed"
        case .system(let operation, let errno):
            return "xenstore: \(operation): \(errno)"
        }
    }

    /// Plain words for the errno names xs_wire.h lists.
    static let errnoMeaning: [String: String] = [
        "EINVAL": "invalid argument",
        "EEXIST": "already exists",
        "EISDIR": "is a directory",
        "ENOMEM": "xenstored out of memory",
        "ENOSPC": "quota exceeded",
        "EIO": "xenstored I/O error",
        "ENOTEMPTY": "not empty",
        "ENOSYS": "not supported by this xenstored",
        "EROFS": "read-only connection",
        "EBUSY": "busy",
        "EISCONN": "already connected",
        "E2BIG": "reply or quota too large",
    ]
}

extension XenStoreError {
    /// A failed system call from LinuxSystem, as this module reports it.
    init(_ failure: SystemCallError) {
        self = .system(operation: failure.operation, failure.errno)
    }
}
