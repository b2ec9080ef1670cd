import SXP

/// Human-readable output of `netconf check` and `netconf status`.
public enum Report {
    /// The effective configuration as an xend-config.sxp that reads back to
    /// the same values, each line saying where its value came from and what
    /// in the appliance reads it.
    public static func effectiveConfiguration(_ config: XendConfig) -> String {
        var lines: [String] = ["# effective configuration of \(config.file)"]
        lines.append("# network: " + describe(config.network))
        lines.append("# vif: " + describe(config.vif, network: config.network))
        for option in config.options {
            let value: String
            switch option.spec.name {
            case "network-script":
                let network = config.network
                value =
                    network.mode == .none
                    ? SXPWriter.config.quote(network.scriptName)
                    : SXPWriter.config.quote(network.effectiveLine)
            case "vif-script":
                value = SXPWriter.config.render(.symbol(config.vif.effectiveLine))
            default:
                if case .none = option.value { continue }
                value = option.value.rendered
            }
            let origin = option.location.map { "line \($0.line)" } ?? "default"
            let user = option.spec.usedBy.map { "read by \($0)" } ?? "kept, not acted on"
            lines.append("(\(option.spec.name) \(value))  # \(origin); \(user)")
        }
        if !config.unknown.isEmpty {
            lines.append("# unknown keys, kept but read by nothing:")
            for (_, node) in config.unknown {
                lines.append("\(SXPWriter.config.render(node))  # line \(node.location.line)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func describe(_ network: NetworkScript) -> String {
        let antispoof = network.antispoof ? "antispoof on" : "antispoof off"
        switch network.mode {
        case .none:
            return "no network-script: netconf start leaves the network alone"
        case .bridge:
            return "bridging: bridge \(network.bridge) over \(network.netdev), \(antispoof)"
        case .route:
            return "routing: IPv4 forwarding, proxy ARP on \(network.netdev), \(antispoof)"
        case .nat:
            return "NAT: IPv4 forwarding, masquerade on \(network.netdev) (nftables), \(antispoof)"
        }
    }

    static func describe(_ vif: VifScript, network: NetworkScript) -> String {
        switch vif.mode {
        case .bridge:
            let bridge =
                vif.bridge ?? (network.mode == .bridge ? network.bridge : "xenbr0")
            return "vif-bridge: each vif joins \(bridge) unless its spec names a bridge"
        case .route:
            return "vif-route: each vif gets \(vif.netdev ?? network.netdev)'s address as /32,"
                + " proxy ARP and a host route per ip="
        case .nat:
            return "vif-nat: each vif gets a router address and a host route for its ip="
        }
    }

    /// The live state of the configured network; `started` is false when
    /// the network-script's set-up is not in place.
    public static func status(
        _ config: XendConfig, on host: NetworkHost
    ) throws(NetConfError) -> (text: String, started: Bool) {
        let net = host.netlink
        let network = config.network
        let links = try net.links()
        let addresses = try net.addresses()
        let routes = try net.routes()
        var lines = ["network-script: \(network.effectiveLine)"]
        func name(_ index: Int32) -> String {
            links.first { $0.index == index }?.name ?? "#\(index)"
        }
        func addressList(_ index: Int32) -> String {
            let list = addresses.filter { $0.interface == index }.map(\.local.cidr)
            return list.isEmpty ? "none" : list.joined(separator: ", ")
        }
        func routeList(_ index: Int32) -> [String] {
            routes.filter { $0.uses(index) && $0.table == Route.tableMain }.map { route in
                var text = route.destination.length == 0 ? "default" : route.destination.cidr
                for hop in route.nexthops {
                    if let gateway = hop.gateway { text += " via \(gateway)" }
                    text += " dev \(name(hop.interface))"
                }
                return text
            }
        }
        var started = false
        switch network.mode {
        case .none:
            lines.append("nothing to do: no network-script")
            started = true
        case .bridge:
            let record = try host.records.load(BridgeRecord.name(bridge: network.bridge))
            if let bridge = links.first(where: { $0.name == network.bridge }) {
                let settings = try net.bridgeSettings(of: bridge.index)
                var text = "bridge \(bridge.name): \(bridge.isUp ? "up" : "down")"
                if let settings {
                    text +=
                        ", STP \(settings.stp ? "on" : "off"), forward delay "
                        + "\(settings.forwardDelay / 100).\(pad2(settings.forwardDelay % 100)) s"
                } else {
                    text += ", not a bridge"
                }
                lines.append(text)
                let ports = links.filter { $0.master == bridge.index }
                    .map { "\($0.name) (\($0.isUp ? "up" : "down"))" }
                lines.append("  ports: " + (ports.isEmpty ? "none" : ports.joined(separator: ", ")))
                lines.append("  addresses: " + addressList(bridge.index))
                for route in routeList(bridge.index) { lines.append("  route: " + route) }
                if let netdev = links.first(where: { $0.name == network.netdev }) {
                    started = netdev.master == bridge.index && settings != nil
                }
            } else {
                lines.append("bridge \(network.bridge): absent")
            }
            if let netdev = links.first(where: { $0.name == network.netdev }) {
                let master = netdev.master == 0 ? "no bridge" : "enslaved to \(name(netdev.master))"
                lines.append(
                    "netdev \(netdev.name): \(netdev.isUp ? "up" : "down"), \(master),"
                        + " addresses: \(addressList(netdev.index))")
            } else {
                lines.append("netdev \(network.netdev): absent")
            }
            let location = host.records.location(of: BridgeRecord.name(bridge: network.bridge))
            lines.append("record: " + (record == nil ? "none" : location))
            if network.antispoof {
                let table = try host.filter.listTable(family: "bridge", name: FilterRules.table)
                lines.append(
                    "antispoof table bridge \(FilterRules.table): \(table == nil ? "absent" : "present")"
                )
            }
        case .route, .nat:
            let forwarding = try host.sysctl.read(NetworkRouting.ipForward)
            lines.append("IPv4 forwarding: \(forwarding == "1" ? "on" : "off")")
            var ready = forwarding == "1"
            if let netdev = links.first(where: { $0.name == network.netdev }) {
                lines.append(
                    "netdev \(netdev.name): \(netdev.isUp ? "up" : "down"), proxy ARP "
                        + "\(netdev.proxyARP == true ? "on" : "off"), addresses: "
                        + addressList(netdev.index))
                if network.mode == .route { ready = ready && netdev.proxyARP == true }
            } else {
                lines.append("netdev \(network.netdev): absent")
                ready = false
            }
            if network.mode == .nat {
                let table = try host.filter.listTable(family: "ip", name: FilterRules.natTable)
                let present =
                    table?.contains(FilterRules.masqueradeListing(netdev: network.netdev)) ?? false
                lines.append("masquerade on \(network.netdev): \(present ? "present" : "absent")")
                ready = ready && present
            }
            for link in links where link.proxyARP == true && link.name != network.netdev {
                let hosts = routeList(link.index)
                lines.append(
                    "vif \(link.name): addresses \(addressList(link.index)); routes: "
                        + (hosts.isEmpty ? "none" : hosts.joined(separator: ", ")))
            }
            if network.antispoof {
                let table = try host.filter.listTable(family: "inet", name: FilterRules.table)
                lines.append(
                    "antispoof table inet \(FilterRules.table): \(table == nil ? "absent" : "present")"
                )
            }
            started = ready
        }
        lines.append("state: \(started ? "started" : "not started")")
        return (lines.joined(separator: "\n") + "\n", started)
    }

    private static func pad2(_ value: UInt32) -> String {
        value < 10 ? "0\(value)" : String(value)
    }
}
