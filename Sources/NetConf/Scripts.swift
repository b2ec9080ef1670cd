/// The network set-ups xend-config.sxp chooses between.
public enum NetworkMode: String, Sendable {
    /// network-bridge: guests share the physical link through a bridge.
    case bridge
    /// network-route: dom0 routes between guests and the link, proxy ARP.
    case route
    /// network-nat: dom0 routes and masquerades guests behind its address.
    case nat
    /// No network-script (or network-dummy): netconf leaves the network alone.
    case none
}

/// The `network-script` key: script and its `key=value` arguments, with
/// network-bridge's defaults (`vifnum` 0, `bridge` xenbr0, `netdev` eth0).
public struct NetworkScript: Sendable, Equatable {
    public var mode: NetworkMode
    /// The script name as written (file name only).
    public var scriptName: String
    public var vifnum: Int
    /// The bridge to create (bridge mode).
    public var bridge: String
    /// The physical (outgoing) interface.
    public var netdev: String
    /// Drop packets from vifs whose source address is not theirs.
    public var antispoof: Bool
    /// Every argument as written.
    public var arguments: [String: String]

    public init(
        mode: NetworkMode, scriptName: String, vifnum: Int = 0, bridge: String = "xenbr0",
        netdev: String = "eth0", antispoof: Bool = false, arguments: [String: String] = [:]
    ) {
        self.mode = mode
        self.scriptName = scriptName
        self.vifnum = vifnum
        self.bridge = bridge
        self.netdev = netdev
        self.antispoof = antispoof
        self.arguments = arguments
    }

    /// No network script.
    public static let none = NetworkScript(mode: .none, scriptName: "")

    /// The script line as xend would run it, with every effective argument.
    public var effectiveLine: String {
        switch mode {
        case .none: return scriptName.isEmpty ? "none" : scriptName
        case .bridge:
            return "network-bridge bridge=\(bridge) netdev=\(netdev) antispoof=\(yesNo(antispoof))"
        case .route: return "network-route netdev=\(netdev) antispoof=\(yesNo(antispoof))"
        case .nat: return "network-nat netdev=\(netdev) antispoof=\(yesNo(antispoof))"
        }
    }
}

/// The per-vif scripts.
public enum VifMode: String, Sendable {
    case bridge
    case route
    case nat

    /// Reads `vif-bridge`, `/etc/xen/scripts/vif-route`, ...
    public init?(scriptName: String) {
        let name = scriptName.split(separator: "/").last.map(String.init) ?? scriptName
        switch name {
        case "vif-bridge": self = .bridge
        case "vif-route": self = .route
        case "vif-nat": self = .nat
        default: return nil
        }
    }

    public var scriptName: String { "vif-\(rawValue)" }
}

/// The `vif-script` key.
public struct VifScript: Sendable, Equatable {
    public var mode: VifMode
    public var scriptName: String
    public var arguments: [String: String]
    /// `bridge=` default for vif-bridge.
    public var bridge: String?
    /// `netdev=` whose address vif-route/vif-nat use as dom0's.
    public var netdev: String?

    public init(
        mode: VifMode, scriptName: String, arguments: [String: String] = [:],
        bridge: String? = nil, netdev: String? = nil
    ) {
        self.mode = mode
        self.scriptName = scriptName
        self.arguments = arguments
        self.bridge = bridge
        self.netdev = netdev
    }

    /// xend's default: vif-bridge, bridge found from the network script.
    public static let bridgeDefault = VifScript(mode: .bridge, scriptName: "vif-bridge")

    public var effectiveLine: String {
        var line = mode.scriptName
        if let bridge { line += " bridge=\(bridge)" }
        if let netdev { line += " netdev=\(netdev)" }
        return line
    }
}

func yesNo(_ flag: Bool) -> String { flag ? "yes" : "no" }
