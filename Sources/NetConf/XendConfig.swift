import SXP

/// A line and column in xend-config.sxp (or a record file).
public typealias SourceLocation = SXPLocation

/// A finding about the configuration file, located in it.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var severity: Severity
    public var file: String
    public var location: SourceLocation
    public var message: String

    public var description: String {
        "\(file):\(location.line):\(location.column): \(severity.rawValue): \(message)"
    }
}

/// The value type xend reads a key as.
public enum OptionKind: Sendable {
    case bool
    case integer
    case text
    /// A whole S-expression (xen-api-server).
    case expression
    /// A script name with `key=value` arguments (network-script, vif-script).
    case script
}

/// A typed option value.
public enum OptionValue: Sendable, Equatable {
    case bool(Bool)
    case integer(Int64)
    case text(String)
    case expression([SXPNode])
    case none

    /// The value as an SXP fragment for `check`'s output.
    public var rendered: String {
        switch self {
        case .bool(let flag): return flag ? "yes" : "no"
        case .integer(let number): return String(number)
        case .text(let text): return SXPWriter.config.render(.symbol(text))
        case .expression(let nodes):
            return nodes.map { SXPWriter.config.render($0) }.joined(separator: " ")
        case .none: return "''"
        }
    }
}

/// One documented xend-config.sxp key.
public struct OptionSpec: Sendable {
    public var name: String
    public var kind: OptionKind
    public var defaultValue: OptionValue
    /// Which part of the appliance reads the key; nil when it is kept and
    /// shown only (xend features the appliance does not have).
    public var usedBy: String?
    public var summary: String
}

/// The keys of Xen 3.x's xend-config.sxp (its example file, its man page
/// and XendOptions.py), with xend's defaults.
public let xendOptionSpecs: [OptionSpec] = [
    OptionSpec(
        name: "network-script", kind: .script, defaultValue: .none, usedBy: "netconf",
        summary: "network set-up at start: network-bridge, network-route or network-nat"),
    OptionSpec(
        name: "vif-script", kind: .script, defaultValue: .text("vif-bridge"), usedBy: "netconf",
        summary: "per-vif set-up: vif-bridge, vif-route or vif-nat"),
    OptionSpec(
        name: "dom0-min-mem", kind: .integer, defaultValue: .integer(0), usedBy: "xend",
        summary: "MiB dom0 may balloon down to for new domains; 0: never balloon"),
    OptionSpec(
        name: "dom0-cpus", kind: .integer, defaultValue: .integer(0), usedBy: "xend",
        summary: "CPUs dom0 uses; 0: all"),
    OptionSpec(
        name: "minimum-restart-time", kind: .integer, defaultValue: .integer(20), usedBy: "xend",
        summary: "Proxenos: seconds a domain must run before on_* restart applies again; "
            + "one that stops sooner is destroyed (xend 3.0's MINIMUM_RESTART_TIME, 20)"),
    OptionSpec(
        name: "guest-shutdown-timeout", kind: .integer,
        defaultValue: .integer(XendConfig.defaultGuestShutdownTimeout), usedBy: "init",
        summary: "Proxenos: on poweroff or reboot, seconds the running guests get to shut "
            + "down before the rest are destroyed (xendomains' XENDOMAINS_STOP_MAXWAIT)"),
    OptionSpec(
        name: "console-limit", kind: .integer, defaultValue: .integer(1024), usedBy: "consoled",
        summary: "per-domain console buffer limit in KiB"),
    OptionSpec(
        name: "enable-dump", kind: .bool, defaultValue: .bool(false), usedBy: "xend",
        summary: "save a core dump when a domain crashes"),
    OptionSpec(
        name: "logfile", kind: .text, defaultValue: .text("/var/log/xen/xend.log"), usedBy: nil,
        summary: "xend's log file"),
    OptionSpec(
        name: "loglevel", kind: .text, defaultValue: .text("DEBUG"), usedBy: nil,
        summary: "DEBUG, INFO, WARNING, ERROR or CRITICAL"),
    OptionSpec(
        name: "xend-http-server", kind: .bool, defaultValue: .bool(false), usedBy: nil,
        summary: "HTTP management server"),
    OptionSpec(
        name: "xend-unix-server", kind: .bool, defaultValue: .bool(false), usedBy: nil,
        summary: "unix-socket management server"),
    OptionSpec(
        name: "xend-tcp-xmlrpc-server", kind: .bool, defaultValue: .bool(false), usedBy: nil,
        summary: "XML-RPC over TCP"),
    OptionSpec(
        name: "xend-tcp-xmlrpc-server-address", kind: .text, defaultValue: .text("localhost"),
        usedBy: nil, summary: "address of the TCP XML-RPC server"),
    OptionSpec(
        name: "xend-tcp-xmlrpc-server-port", kind: .integer, defaultValue: .integer(8006),
        usedBy: nil, summary: "port of the TCP XML-RPC server"),
    OptionSpec(
        name: "xend-unix-xmlrpc-server", kind: .bool, defaultValue: .bool(true), usedBy: nil,
        summary: "XML-RPC over a unix socket"),
    OptionSpec(
        name: "xend-relocation-server", kind: .bool, defaultValue: .bool(false), usedBy: nil,
        summary: "accept migrations (unauthenticated)"),
    OptionSpec(
        name: "xend-relocation-ssl-server", kind: .bool, defaultValue: .bool(false), usedBy: nil,
        summary: "accept migrations over SSL"),
    OptionSpec(
        name: "xend-relocation-port", kind: .integer, defaultValue: .integer(8002), usedBy: nil,
        summary: "relocation server port"),
    OptionSpec(
        name: "xend-relocation-ssl-port", kind: .integer, defaultValue: .integer(8003), usedBy: nil,
        summary: "SSL relocation server port"),
    OptionSpec(
        name: "xend-relocation-address", kind: .text, defaultValue: .text(""), usedBy: nil,
        summary: "relocation server address; '' is every interface"),
    OptionSpec(
        name: "xend-relocation-hosts-allow", kind: .text, defaultValue: .text(""), usedBy: nil,
        summary: "regular expressions of hosts allowed to migrate in; '' is all"),
    OptionSpec(
        name: "xend-unix-path", kind: .text, defaultValue: .text("/var/lib/xend/xend-socket"),
        usedBy: nil, summary: "unix management socket"),
    OptionSpec(
        name: "xend-port", kind: .integer, defaultValue: .integer(8000), usedBy: nil,
        summary: "HTTP server port"),
    OptionSpec(
        name: "xend-address", kind: .text, defaultValue: .text(""), usedBy: nil,
        summary: "HTTP server address; '' is every interface"),
    OptionSpec(
        name: "xen-api-server", kind: .expression,
        defaultValue: .expression([
            SXPNode(
                .list([SXPNode(.symbol("unix"), at: SourceLocation(line: 0, column: 0))]),
                at: SourceLocation(line: 0, column: 0))
        ]), usedBy: nil, summary: "Xen-API listeners"),
    OptionSpec(
        name: "external-migration-tool", kind: .text, defaultValue: .text(""), usedBy: nil,
        summary: "tool for external device (vTPM) migration"),
    OptionSpec(
        name: "vnc-listen", kind: .text, defaultValue: .text("127.0.0.1"), usedBy: nil,
        summary: "address HVM VNC servers listen on"),
    OptionSpec(
        name: "vncpasswd", kind: .text, defaultValue: .text(""), usedBy: nil,
        summary: "default VNC password for HVM domains"),
    OptionSpec(
        name: "vnc-tls", kind: .integer, defaultValue: .integer(0), usedBy: nil,
        summary: "TLS for VNC"),
    OptionSpec(
        name: "vnc-x509-cert-dir", kind: .text, defaultValue: .text("/etc/xen/vnc"), usedBy: nil,
        summary: "VNC TLS certificates"),
    OptionSpec(
        name: "vnc-x509-verify", kind: .integer, defaultValue: .integer(0), usedBy: nil,
        summary: "verify VNC client certificates"),
    OptionSpec(
        name: "keymap", kind: .text, defaultValue: .none, usedBy: nil,
        summary: "default keyboard map for HVM domains"),
    OptionSpec(
        name: "device-create-timeout", kind: .integer, defaultValue: .integer(100), usedBy: "xend",
        summary: "seconds to wait for a new device"),
    OptionSpec(
        name: "device-destroy-timeout", kind: .integer, defaultValue: .integer(100), usedBy: "xend",
        summary: "seconds to wait for a device to go"),
    OptionSpec(
        name: "xend-domains-path", kind: .text, defaultValue: .text("/var/lib/xend/domains"),
        usedBy: nil, summary: "managed domain store"),
    OptionSpec(
        name: "xend-state-path", kind: .text, defaultValue: .text("/var/lib/xend/state"),
        usedBy: nil, summary: "xend state store"),
    OptionSpec(
        name: "xend-storage-path", kind: .text, defaultValue: .text("/var/lib/xend/storage"),
        usedBy: nil, summary: "QCoW storage repository"),
    OptionSpec(
        name: "enable-dom0-ballooning", kind: .bool, defaultValue: .bool(true), usedBy: "xend",
        summary: "whether dom0 balloons down (default: yes unless dom0-min-mem is 0)"),
]

/// The effective value of one key and where it came from.
public struct EffectiveOption: Sendable {
    public var spec: OptionSpec
    public var value: OptionValue
    /// Where the value was read; nil for the default.
    public var location: SourceLocation?
}

/// A parsed and checked xend-config.sxp.
public struct XendConfig: Sendable {
    /// The file name, for messages.
    public var file: String
    /// Every documented key, in ``xendOptionSpecs`` order.
    public var options: [EffectiveOption]
    /// Keys the file sets that xend does not document (kept, warned about).
    public var unknown: [(key: String, node: SXPNode)]
    /// Warnings found while reading; errors are thrown instead.
    public var warnings: [ConfigDiagnostic]
    /// The network set-up to run at start.
    public var network: NetworkScript
    /// The per-vif set-up.
    public var vif: VifScript

    /// The effective value of a documented key.
    public func option(_ name: String) -> OptionValue {
        options.first { $0.spec.name == name }?.value ?? .none
    }

    /// The integer value of a documented integer key.
    public func integer(_ name: String) -> Int64? {
        if case .integer(let number) = option(name) { return number }
        return nil
    }

    /// The boolean value of a documented boolean key.
    public func bool(_ name: String) -> Bool? {
        if case .bool(let flag) = option(name) { return flag }
        return nil
    }

    /// The text value of a documented text key.
    public func text(_ name: String) -> String? {
        if case .text(let text) = option(name) { return text }
        return nil
    }

    public var dom0MinMem: Int64 { integer("dom0-min-mem") ?? 0 }
    public var dom0CPUs: Int64 { integer("dom0-cpus") ?? 0 }
    public var consoleLimit: Int64 { integer("console-limit") ?? 1024 }
    /// xend's restart-loop guard in seconds (never negative).
    public var minimumRestartTime: Int64 { max(0, integer("minimum-restart-time") ?? 20) }
    /// The host shutdown's deadline for the guests, in seconds (0 to a day).
    public var guestShutdownTimeout: Int64 {
        min(86_400, max(0, integer("guest-shutdown-timeout") ?? Self.defaultGuestShutdownTimeout))
    }
    public static let defaultGuestShutdownTimeout: Int64 = 60
    public var enableDump: Bool { bool("enable-dump") ?? false }
    public var vncListen: String { text("vnc-listen") ?? "127.0.0.1" }
    public var relocationServer: Bool { bool("xend-relocation-server") ?? false }
    public var relocationPort: Int64 { integer("xend-relocation-port") ?? 8002 }
    public var relocationAddress: String { text("xend-relocation-address") ?? "" }
    public var relocationHostsAllow: String { text("xend-relocation-hosts-allow") ?? "" }

    /// The configuration xend uses when the file is absent.
    public static func defaults(file: String = "(defaults)") -> XendConfig {
        // Cannot fail: an empty file has no values to reject.
        (try? XendConfig.parse([UInt8](), file: file))
            ?? XendConfig(
                file: file, options: [], unknown: [], warnings: [],
                network: NetworkScript.none, vif: VifScript.bridgeDefault)
    }
}

/// Errors in a configuration file: each one located.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }
}

extension XendConfig {
    /// Reads a configuration from its bytes. Syntax errors and invalid
    /// values throw ``ConfigError``; unknown keys and ignored forms become
    /// warnings.
    public static func parse<Bytes: Sequence>(
        _ bytes: Bytes, file: String
    ) throws(ConfigError) -> XendConfig where Bytes.Element == UInt8 {
        let nodes: [SXPNode]
        do {
            nodes = try SXPParser.parse(bytes, file: file)
        } catch {
            throw ConfigError(diagnostics: [
                ConfigDiagnostic(
                    severity: .error, file: file, location: error.location,
                    message: error.message)
            ])
        }
        var reader = ConfigReader(file: file)
        return try reader.read(nodes)
    }

    /// Reads a configuration from text.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> XendConfig {
        try parse(Array(text.utf8), file: file)
    }
}

/// Turns top-level SXP forms into typed options, collecting diagnostics.
private struct ConfigReader {
    let file: String
    var errors: [ConfigDiagnostic] = []
    var warnings: [ConfigDiagnostic] = []

    init(file: String) { self.file = file }

    mutating func read(_ nodes: [SXPNode]) throws(ConfigError) -> XendConfig {
        var seen: [String: SourceLocation] = [:]
        var values: [String: (OptionValue, SourceLocation)] = [:]
        var scriptNodes: [String: SXPNode] = [:]
        var unknown: [(key: String, node: SXPNode)] = []
        let specs = Dictionary(uniqueKeysWithValues: xendOptionSpecs.map { ($0.name, $0) })

        for node in nodes {
            guard let items = node.listItems else {
                warn(node.location, "ignored: a top-level value must be a (key value) list")
                continue
            }
            guard let first = items.first else {
                warn(node.location, "ignored: empty list")
                continue
            }
            guard case .symbol(let key) = first.value else {
                warn(first.location, "ignored: a key must be a bare word")
                continue
            }
            if let earlier = seen[key] {
                warn(
                    first.location,
                    "duplicate key \(key) ignored: xend uses the first one, at \(earlier)")
                continue
            }
            seen[key] = first.location
            let arguments = Array(items.dropFirst())
            guard let spec = specs[key] else {
                warn(first.location, "unknown key \(key): kept, but nothing reads it")
                unknown.append((key, node))
                continue
            }
            if spec.kind == .expression {
                values[key] = (.expression(arguments), first.location)
                continue
            }
            guard let valueNode = arguments.first else {
                error(node.location, "(\(key)) needs a value")
                continue
            }
            if arguments.count > 1 {
                warn(arguments[1].location, "extra values after \(key) ignored")
            }
            if let value = convert(valueNode, as: spec) {
                values[key] = (value, valueNode.location)
                if spec.kind == .script { scriptNodes[key] = valueNode }
            }
        }

        var options: [EffectiveOption] = []
        for spec in xendOptionSpecs {
            if let (value, location) = values[spec.name] {
                options.append(EffectiveOption(spec: spec, value: value, location: location))
            } else {
                options.append(EffectiveOption(spec: spec, value: spec.defaultValue, location: nil))
            }
        }
        // xend: ballooning defaults to off when dom0-min-mem is 0.
        if values["enable-dom0-ballooning"] == nil,
            let index = options.firstIndex(where: { $0.spec.name == "enable-dom0-ballooning" }),
            case .integer(let minimum) = values["dom0-min-mem"]?.0 ?? .integer(0)
        {
            options[index].value = .bool(minimum != 0)
        }

        let network = readNetworkScript(scriptNodes["network-script"])
        let vif = readVifScript(scriptNodes["vif-script"], network: network)

        if !errors.isEmpty {
            let inOrder = errors.enumerated().sorted {
                ($0.element.location, $0.offset) < ($1.element.location, $1.offset)
            }
            throw ConfigError(diagnostics: inOrder.map(\.element) + warnings)
        }
        return XendConfig(
            file: file, options: options, unknown: unknown, warnings: warnings,
            network: network, vif: vif)
    }

    mutating func convert(_ node: SXPNode, as spec: OptionSpec) -> OptionValue? {
        switch spec.kind {
        case .bool:
            if let text = node.atomText, let flag = parseXendBool(text) { return .bool(flag) }
            error(node.location, "\(spec.name) expects yes or no, not \(render(node))")
        case .integer:
            if case .integer(let number) = node.value { return .integer(number) }
            if let text = node.atomText, let number = Int64(text) { return .integer(number) }
            error(node.location, "\(spec.name) expects an integer, not \(render(node))")
        case .text, .script:
            if let text = node.atomText { return .text(text) }
            error(node.location, "\(spec.name) expects a word or a string, not a list")
        case .expression:
            return .expression([node])
        }
        return nil
    }

    // MARK: network-script and vif-script

    mutating func readNetworkScript(_ node: SXPNode?) -> NetworkScript {
        guard let node, let text = node.atomText else { return .none }
        let (name, arguments) = splitScript(text, at: node.location)
        var script = NetworkScript.none
        script.scriptName = name
        switch name {
        case "network-bridge": script.mode = .bridge
        case "network-route": script.mode = .route
        case "network-nat": script.mode = .nat
        case "network-dummy", "": script.mode = .none
        default:
            error(
                node.location,
                "network-script \(name) is not supported: use network-bridge, network-route,"
                    + " network-nat or network-dummy")
            return script
        }
        var known: Set<String> = ["netdev", "antispoof", "vifnum"]
        if script.mode == .bridge { known.insert("bridge") }
        if script.mode == .nat { known.insert("dhcp") }
        for (key, value) in arguments where !known.contains(key) {
            warn(node.location, "\(name) argument \(key)=\(value) is not used")
        }
        if let text = arguments["vifnum"] {
            if let number = Int(text), number >= 0, number < 1000 {
                script.vifnum = number
            } else {
                error(node.location, "\(name): vifnum=\(text) is not a small number")
            }
        }
        script.bridge = "xenbr\(script.vifnum)"
        script.netdev = script.mode == .bridge ? "eth\(script.vifnum)" : "eth0"
        if let bridge = arguments["bridge"] {
            if isValidInterfaceName(bridge) {
                script.bridge = bridge
            } else {
                error(node.location, "\(name): bridge=\(bridge) is not a valid interface name")
            }
        }
        if let netdev = arguments["netdev"] {
            if isValidInterfaceName(netdev) {
                script.netdev = netdev
            } else {
                error(node.location, "\(name): netdev=\(netdev) is not a valid interface name")
            }
        }
        if script.bridge == script.netdev, script.mode == .bridge {
            error(node.location, "\(name): bridge and netdev are both \(script.netdev)")
        }
        // network-route documents antispoof as on by default; the others off.
        script.antispoof = script.mode == .route
        if let text = arguments["antispoof"] {
            if let flag = parseXendBool(text) {
                script.antispoof = flag
            } else {
                error(node.location, "\(name): antispoof=\(text) must be yes or no")
            }
        }
        if let dhcp = arguments["dhcp"], parseXendBool(dhcp) == true {
            warn(node.location, "\(name): dhcp=\(dhcp) is not supported; no DHCP server is set up")
        }
        script.arguments = arguments
        return script
    }

    mutating func readVifScript(_ node: SXPNode?, network: NetworkScript) -> VifScript {
        guard let node, let text = node.atomText else { return .bridgeDefault }
        let (name, arguments) = splitScript(text, at: node.location)
        guard let mode = VifMode(scriptName: name) else {
            error(
                node.location,
                "vif-script \(name) is not supported: use vif-bridge, vif-route or vif-nat")
            return .bridgeDefault
        }
        var script = VifScript(mode: mode, scriptName: name, arguments: arguments)
        let known: Set<String> = mode == .bridge ? ["bridge"] : ["netdev"]
        for (key, value) in arguments where !known.contains(key) {
            warn(node.location, "\(name) argument \(key)=\(value) is not used")
        }
        if let bridge = arguments["bridge"], mode == .bridge {
            if isValidInterfaceName(bridge) {
                script.bridge = bridge
            } else {
                error(node.location, "\(name): bridge=\(bridge) is not a valid interface name")
            }
        }
        if let netdev = arguments["netdev"], mode != .bridge {
            if isValidInterfaceName(netdev) {
                script.netdev = netdev
            } else {
                error(node.location, "\(name): netdev=\(netdev) is not a valid interface name")
            }
        }
        let pairs: [(NetworkMode, VifMode)] = [(.bridge, .bridge), (.route, .route), (.nat, .nat)]
        if network.mode != .none, !pairs.contains(where: { $0 == (network.mode, mode) }) {
            warn(
                node.location,
                "vif-script \(name) does not match network-script \(network.scriptName)")
        }
        return script
    }

    /// `'network-bridge netdev=eth1 bridge=xenbr1'` → name and arguments.
    /// A path is reduced to its file name (xend prepends its script
    /// directory to a bare name).
    mutating func splitScript(
        _ text: String, at location: SourceLocation
    ) -> (String, [String: String]) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
        guard let first = words.first else { return ("", [:]) }
        let name = String(first.split(separator: "/").last ?? first)
        var arguments: [String: String] = [:]
        for word in words.dropFirst() {
            let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                warn(location, "\(name) argument \(word) is not key=value; ignored")
                continue
            }
            arguments[String(parts[0])] = String(parts[1])
        }
        return (name, arguments)
    }

    func render(_ node: SXPNode) -> String { SXPWriter.config.render(node) }

    mutating func warn(_ location: SourceLocation, _ message: String) {
        warnings.append(
            ConfigDiagnostic(severity: .warning, file: file, location: location, message: message))
    }

    mutating func error(_ location: SourceLocation, _ message: String) {
        errors.append(
            ConfigDiagnostic(severity: .error, file: file, location: location, message: message))
    }
}

/// xend's boolean words (XendOptions.get_config_bool), case-insensitive.
public func parseXendBool(_ text: String) -> Bool? {
    switch text.lowercased() {
    case "yes", "y", "1", "on", "true", "t": return true
    case "no", "n", "0", "off", "false", "f": return false
    default: return nil
    }
}

/// Whether a name is acceptable to the kernel as a network interface name,
/// and safe to hand to nftables: 1–15 bytes of printable ASCII without `/`,
/// `:`, quotes, backslash or whitespace, and not `.` or `..`.
public func isValidInterfaceName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (1...15).contains(bytes.count), name != ".", name != ".." else { return false }
    return bytes.allSatisfy { byte in
        byte > 0x20 && byte < 0x7f && byte != UInt8(ascii: "/") && byte != UInt8(ascii: ":")
            && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "'")
            && byte != UInt8(ascii: "\\")
    }
}

extension XendConfig {
    /// Reads and checks a configuration file; nil when it does not exist.
    public static func load(path: String) throws(NetConfError) -> XendConfig? {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path)
        } catch .file(_, _, let errno) where errno == .noSuchFileOrDirectory {
            return nil
        }
        do {
            return try parse(bytes, file: path)
        } catch {
            throw .config(error)
        }
    }
}
