/// What PID 1 takes from the kernel command line's `proxenos.*` keys.
///
/// Keys: `hostname=NAME`, `console=TTY`, `shell=0|1`, `disable=svc[,svc]`,
/// `modules=mod[,mod]` (loaded after the built-in list), `debug`.
/// Unknown keys and bad values become warnings; boot goes on with defaults.
public struct InitConfiguration: Sendable, Equatable {
    public var hostname: String?
    public var console: String?
    public var adminShell = true
    public var disabledServices: Set<String> = []
    public var extraModules: [String] = []
    public var debug = false
    /// Problems found while reading the keys, one line each.
    public var warnings: [String] = []

    public static let knownKeys: Set<String> = [
        "hostname", "console", "shell", "disable", "modules", "debug",
        // Read by other programs: `proxenos netconf dom0` and `proxenos provision`.
        "net", "config", "config.sha256",
    ]

    public init() {}

    /// Reads the `proxenos.*` keys of a kernel command line.
    public init(commandLine: KernelCommandLine) {
        for (key, value) in commandLine.proxenosKeys.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "hostname":
                if Self.isValidHostname(value) {
                    hostname = value
                } else {
                    warnings.append("proxenos.hostname=\(value) is not a valid host name; ignored")
                }
            case "console":
                let name = value.hasPrefix("/dev/") ? String(value.dropFirst(5)) : value
                if name.isEmpty || name.contains("/") || name.contains("..") {
                    warnings.append("proxenos.console=\(value) is not a tty name; ignored")
                } else {
                    console = name
                }
            case "shell":
                if let flag = Self.boolean(value) {
                    adminShell = flag
                } else {
                    warnings.append("proxenos.shell=\(value) is not 0 or 1; keeping the shell")
                }
            case "disable":
                disabledServices.formUnion(Self.list(value))
            case "modules":
                extraModules += Self.list(value)
            case "debug":
                debug = Self.boolean(value) ?? true
            case "net", "config", "config.sha256":
                break
            default:
                warnings.append("unknown kernel parameter proxenos.\(key); ignored")
            }
        }
    }

    static func list(_ value: String) -> [String] {
        value.split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }

    static func boolean(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "", "1", "yes", "on", "true": return true
        case "0", "no", "off", "false": return false
        default: return nil
        }
    }

    /// RFC 1123 labels: letters, digits and inner hyphens, at most 63 each,
    /// at most 253 in all.
    static func isValidHostname(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard !label.isEmpty, label.utf8.count <= 63,
                label.first != "-", label.last != "-"
            else { return false }
            return label.unicodeScalars.allSatisfy {
                ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
                    || $0 == "-"
            }
        }
    }
}
