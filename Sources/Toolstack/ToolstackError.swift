import DomainConfig
import SystemPackage

/// Everything that can go wrong in xend and xm, in words an admin can act
/// on. Guest faults (a guest that ignores a request or writes garbage into
/// its nodes) are their own cases.
public enum ToolstackError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A libxenctrl call failed; `detail` is libxenctrl's own message.
    case hypervisor(operation: String, errno: Errno?, detail: String)
    /// A step of libxenguest's domain builder failed.
    case builder(step: String, detail: String)
    /// A file the domain needs (kernel, ramdisk) cannot be read.
    case unreadableFile(role: String, path: String, reason: String)
    /// The config file was rejected (file:line and key inside).
    case config(DomainConfigError)
    /// A config that xend accepted from xm is inconsistent.
    case invalidSpec(String)
    /// Another domain has this name.
    case nameInUse(name: String, domid: UInt32)
    /// No domain has this name or id.
    case noSuchDomain(String)
    /// The request does not apply to this domain (dom0, a domain being
    /// saved, ...).
    case notAllowed(domain: String, reason: String)
    /// Devices of a type no backend serves yet.
    case backendMissing(deviceType: String, count: Int)
    /// A backend did not reach the state it should within the deadline.
    case backendTimeout(path: String, seconds: Int)
    /// The guest did not do what it was asked within the deadline.
    case guestTimeout(domid: UInt32, what: String, seconds: Int)
    /// The guest misbehaved (garbage in its nodes, unexpected state).
    case guestFault(domid: UInt32, String)
    /// A xenstore request failed.
    case xenstore(String)
    /// A save file is unreadable or not ours.
    case badSaveFile(path: String, reason: String)
    /// A file or socket operation failed.
    case system(operation: String, Errno)
    /// A malformed message on xend's socket.
    case malformedMessage(String)
    /// xend is not running or refused the connection.
    case daemonUnavailable(path: String, reason: String)
    /// xend reported an error (the text is xend's description).
    case remote(String)
    /// xenstored died and was respawned with an empty tree (`since` is
    /// PID 1's note of when): new domains are refused until a reboot.
    case xenstoreLost(since: String)
    /// The host's shutdown began (`xm shutdown --all --wait --host`): no
    /// domain is created, restored or restarted any more.
    case hostShuttingDown

    public var description: String {
        switch self {
        case .hypervisor(let operation, let errno, let detail):
            var text = "\(operation) failed"
            if let errno { text += ": \(errno)" }
            if !detail.isEmpty { text += " (\(detail))" }
            return text
        case .builder(let step, let detail):
            return "domain builder: \(step) failed" + (detail.isEmpty ? "" : ": \(detail)")
        case .unreadableFile(let role, let path, let reason):
            return "cannot read the \(role) '\(path)': \(reason)"
        case .config(let error):
            return error.description
        case .invalidSpec(let message):
            return "invalid domain configuration: \(message)"
        case .nameInUse(let name, let domid):
            return "a domain named '\(name)' already exists (id \(domid)); "
                + "domain names must be unique"
        case .noSuchDomain(let name):
            return "no domain '\(name)' (give a name or id that 'xm list' shows)"
        case .notAllowed(let domain, let reason):
            return "domain \(domain): \(reason)"
        case .backendMissing(let type, let count):
            let what = type == "vbd" ? "disk" : "network interface"
            return "the config has \(count) \(what)\(count == 1 ? "" : "s") (\(type)) but no "
                + "\(type) backend runs yet; remove the '\(type == "vbd" ? "disk" : "vif")' "
                + "entries or pass --skip-devices to create the domain without them"
        case .backendTimeout(let path, let seconds):
            return "the backend at \(path) did not become ready within \(seconds) s; "
                + "the domain was destroyed"
        case .guestTimeout(let domid, let what, let seconds):
            return "domain \(domid) did not \(what) within \(seconds) s"
        case .guestFault(let domid, let message):
            return "domain \(domid): \(message)"
        case .xenstore(let message):
            return message
        case .badSaveFile(let path, let reason):
            return "'\(path)' is not a usable save file: \(reason)"
        case .system(let operation, let errno):
            return "\(operation): \(errno)"
        case .malformedMessage(let message):
            return "xend protocol error: \(message)"
        case .daemonUnavailable(let path, let reason):
            return "cannot talk to xend at \(path): \(reason) (is xend running?)"
        case .remote(let message):
            return message
        case .xenstoreLost(let since):
            return "xenstored died and was restarted \(since): the xenstore tree and every "
                + "guest's xenstore connection were lost, so xend creates no domains until the "
                + "appliance reboots (running guests go on, unmanaged)"
        case .hostShuttingDown:
            return "the appliance is shutting down: xend starts no domain any more"
        }
    }

    /// A short word for the kind of error, sent on the wire.
    public var kind: String {
        switch self {
        case .hypervisor: return "hypervisor"
        case .builder: return "builder"
        case .unreadableFile: return "file"
        case .config: return "config"
        case .invalidSpec: return "spec"
        case .nameInUse: return "name-in-use"
        case .noSuchDomain: return "no-such-domain"
        case .notAllowed: return "not-allowed"
        case .backendMissing: return "backend-missing"
        case .backendTimeout: return "backend-timeout"
        case .guestTimeout: return "guest-timeout"
        case .guestFault: return "guest-fault"
        case .xenstore: return "xenstore"
        case .badSaveFile: return "save-file"
        case .system: return "system"
        case .malformedMessage: return "protocol"
        case .daemonUnavailable: return "unavailable"
        case .remote: return "remote"
        case .xenstoreLost: return "xenstore-lost"
        case .hostShuttingDown: return "host-shutdown"
        }
    }
}
