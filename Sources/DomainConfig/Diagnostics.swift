/// A place in a config file: file name, 1-based line and (where it helps)
/// 1-based column, counted in bytes.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int?

    public init(file: String, line: Int, column: Int? = nil) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, the form editors jump to.
    public var description: String {
        if let column { return "\(file):\(line):\(column)" }
        return "\(file):\(line)"
    }
}

/// Where a setting's value came from.
public enum SettingOrigin: Sendable, Hashable, CustomStringConvertible {
    /// Assigned in the config file (the last assignment or `+=` wins).
    case file(SourceLocation)
    /// Given on the `xm create` command line as `key=value`.
    case commandLine(argument: String)

    public var description: String {
        switch self {
        case .file(let location): return location.description
        case .commandLine(let argument): return "command line argument '\(argument)'"
        }
    }
}

/// Everything that can go wrong turning an xm config into a `DomainSpec`.
/// Each description names the file, line and key so an admin can fix it.
public enum DomainConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No file was found as given nor in any search directory.
    case configNotFound(name: String, searched: [String])
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)
    /// The text is not valid in the Python subset xm configs use.
    case syntax(SourceLocation, String)
    /// Executing an assignment failed (undefined name, type mismatch,
    /// division by zero, bad `%` format ...). `key` is the assigned name.
    case evaluation(SourceLocation, key: String?, String)
    /// A setting has a value of the wrong type or out of range.
    case invalidSetting(key: String, origin: SettingOrigin, String)
    /// A required setting is absent (`kernel`, or a usable `name`).
    case missingSetting(key: String, file: String, String)
    /// One entry of `disk` is malformed; `index` counts from 0.
    case invalidDisk(index: Int, spec: String, origin: SettingOrigin, String)
    /// One entry of `vif` is malformed; `index` counts from 0.
    case invalidVif(index: Int, spec: String, origin: SettingOrigin, String)
    /// Two disks map to the same virtual device number.
    case duplicateVirtualDevice(
        device: String, number: Int, first: String, second: String, origin: SettingOrigin)
    /// An `xm create` argument is not `name=value` or has a bad value.
    case invalidArgument(String, String)

    /// The file position the error points at, when it has one.
    public var location: SourceLocation? {
        switch self {
        case .syntax(let location, _), .evaluation(let location, _, _):
            return location
        case .invalidSetting(_, let origin, _), .invalidDisk(_, _, let origin, _),
            .invalidVif(_, _, let origin, _), .duplicateVirtualDevice(_, _, _, _, let origin):
            if case .file(let location) = origin { return location }
            return nil
        case .configNotFound, .unreadable, .missingSetting, .invalidArgument:
            return nil
        }
    }

    /// The setting the error is about, when there is one.
    public var key: String? {
        switch self {
        case .evaluation(_, let key, _): return key
        case .invalidSetting(let key, _, _), .missingSetting(let key, _, _): return key
        case .invalidDisk, .duplicateVirtualDevice: return "disk"
        case .invalidVif: return "vif"
        case .configNotFound, .unreadable, .syntax, .invalidArgument: return nil
        }
    }

    public var description: String {
        switch self {
        case .configNotFound(let name, let searched):
            return "cannot find config file '\(name)' (looked at: "
                + searched.joined(separator: ", ") + ")"
        case .unreadable(let path, let reason):
            return "cannot read config file '\(path)': \(reason)"
        case .syntax(let location, let message):
            return "\(location): syntax error: \(message)"
        case .evaluation(let location, let key, let message):
            if let key { return "\(location): in '\(key)': \(message)" }
            return "\(location): \(message)"
        case .invalidSetting(let key, let origin, let message):
            return "\(origin): \(key): \(message)"
        case .missingSetting(let key, let file, let message):
            return "\(file): \(key): \(message)"
        case .invalidDisk(let index, let spec, let origin, let message):
            return "\(origin): disk[\(index)] '\(spec)': \(message)"
        case .invalidVif(let index, let spec, let origin, let message):
            return "\(origin): vif[\(index)] '\(spec)': \(message)"
        case .duplicateVirtualDevice(let device, let number, let first, let second, let origin):
            return "\(origin): disk: virtual device \(device) (number \(number)) is used twice: "
                + "'\(first)' and '\(second)'"
        case .invalidArgument(let argument, let message):
            return "xm create argument '\(argument)': \(message)"
        }
    }
}

/// Something xm would have accepted that Proxenos ignores or that looks
/// like a mistake; never fatal.
public struct DomainConfigWarning: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var origin: SettingOrigin?
    public var message: String

    public init(key: String, origin: SettingOrigin?, message: String) {
        self.key = key
        self.origin = origin
        self.message = message
    }

    public var description: String {
        if let origin { return "\(origin): \(key): \(message)" }
        return "\(key): \(message)"
    }
}
