import SystemPackage

/// Everything that can stop netconf, in words an administrator can act on.
public enum NetConfError: Error, Sendable, CustomStringConvertible {
    /// The configuration file has errors (each located).
    case config(ConfigError)
    /// A file could not be read or written.
    case file(path: String, operation: String, Errno)
    /// A state record under the state directory is damaged.
    case badRecord(path: String, reason: String)
    /// A named interface does not exist.
    case noSuchInterface(String)
    /// The kernel refused a netlink request.
    case netlink(operation: String, code: Int32, message: String)
    /// The interface exists but cannot do what the configuration asks.
    case unsuitableInterface(name: String, reason: String)
    /// nftables refused a rule set.
    case nftables(operation: String, message: String)
    /// A caller passed a value netconf cannot use (bad vif name, address).
    case invalidArgument(String)
    /// A step failed and undoing the earlier steps failed too: the network
    /// is in neither state.
    case rollbackIncomplete(cause: String, undoFailures: [String])

    public var description: String {
        switch self {
        case .config(let error):
            return error.description
        case .file(let path, let operation, let errno):
            return "\(path): cannot \(operation): \(errno)"
        case .badRecord(let path, let reason):
            return "\(path): damaged state record (\(reason)); remove it after checking the network"
        case .noSuchInterface(let name):
            return "interface \(name) does not exist"
        case .netlink(let operation, let code, let message):
            return "\(operation): \(message) (netlink error \(code))"
        case .unsuitableInterface(let name, let reason):
            return "interface \(name): \(reason)"
        case .nftables(let operation, let message):
            return "nftables \(operation): \(message)"
        case .invalidArgument(let message):
            return message
        case .rollbackIncomplete(let cause, let failures):
            return "\(cause); undoing the earlier steps also failed: "
                + failures.joined(separator: "; ")
        }
    }
}
