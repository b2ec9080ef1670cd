/// What the vif-script needs to know about one guest NIC (vifD.N).
public struct VifSpec: Sendable, Equatable {
    public var domid: Int
    public var devid: Int
    public var mode: VifMode
    /// The TAP interface netback created: `vifD.N` unless renamed.
    public var name: String
    /// The bridge to join (bridge mode).
    public var bridge: String
    /// The guest's addresses (`ip=` of the vif spec): routes in route and
    /// NAT mode, the allowed sources with antispoof.
    public var addresses: [IPPrefix]
    public var antispoof: Bool
    /// dom0's interface whose address route mode lends to the vif.
    public var netdev: String
    public var mac: String?

    public init(
        domid: Int, devid: Int, mode: VifMode, name: String, bridge: String = "xenbr0",
        addresses: [IPPrefix] = [], antispoof: Bool = false, netdev: String = "eth0",
        mac: String? = nil
    ) {
        self.domid = domid
        self.devid = devid
        self.mode = mode
        self.name = name
        self.bridge = bridge
        self.addresses = addresses
        self.antispoof = antispoof
        self.netdev = netdev
        self.mac = mac
    }
}

/// The entries of a vif's backend directory in xenstore that the
/// vif-script reads. All optional: xend writes only what the domain
/// configuration gave.
public struct VifBackendEntries: Sendable, Equatable {
    public var bridge: String?
    /// Space-separated addresses, as xend writes them.
    public var ip: String?
    public var vifname: String?
    public var mac: String?
    /// The vif-script (name or path) of this vif, overriding xend-config's.
    public var script: String?

    public init(
        bridge: String? = nil, ip: String? = nil, vifname: String? = nil, mac: String? = nil,
        script: String? = nil
    ) {
        self.bridge = bridge
        self.ip = ip
        self.vifname = vifname
        self.mac = mac
        self.script = script
    }

    /// The backend directory these entries live in.
    public static func directory(domid: Int, devid: Int) -> String {
        "/local/domain/0/backend/vif/\(domid)/\(devid)"
    }

    /// The keys under ``directory(domid:devid:)``.
    public static let keys = ["bridge", "ip", "vifname", "mac", "script"]

    /// Builds the entries from a lookup of each key (a xenstore read that
    /// returns nil for a missing key): the seam for the xenstore client.
    public static func read(
        domid: Int, devid: Int, using lookup: (String) throws(NetConfError) -> String?
    ) throws(NetConfError) -> VifBackendEntries {
        let base = directory(domid: domid, devid: devid)
        return VifBackendEntries(
            bridge: try lookup(base + "/bridge"), ip: try lookup(base + "/ip"),
            vifname: try lookup(base + "/vifname"), mac: try lookup(base + "/mac"),
            script: try lookup(base + "/script"))
    }
}

extension VifSpec {
    /// Combines a vif's backend entries with xend-config's defaults, as
    /// vif-common.sh does: the store's values win, then the vif-script's
    /// arguments, then the network-script's.
    public static func resolve(
        domid: Int, devid: Int, entries: VifBackendEntries, config: XendConfig
    ) throws(NetConfError) -> VifSpec {
        guard domid >= 0, devid >= 0 else {
            throw .invalidArgument("domain and device ids must not be negative")
        }
        var mode = config.vif.mode
        if let script = entries.script, !script.isEmpty {
            guard let chosen = VifMode(scriptName: script) else {
                throw .invalidArgument(
                    "vif script \(script) is not supported: use vif-bridge, vif-route or vif-nat")
            }
            mode = chosen
        }
        let name = nonEmpty(entries.vifname) ?? "vif\(domid).\(devid)"
        guard isValidInterfaceName(name), isValidChainInterface(name) else {
            throw .invalidArgument(
                "vif name \(name) is not usable: letters, digits, '.', '_' and '-', at most 15")
        }
        let bridge =
            nonEmpty(entries.bridge) ?? config.vif.bridge
            ?? (config.network.mode == .bridge ? config.network.bridge : "xenbr0")
        guard isValidInterfaceName(bridge) else {
            throw .invalidArgument("bridge name \(bridge) is not a valid interface name")
        }
        var addresses: [IPPrefix] = []
        for word in (entries.ip ?? "").split(whereSeparator: { $0 == " " || $0 == "," }) {
            guard let prefix = IPPrefix(word) else {
                throw .invalidArgument("vif ip \(word) is not an IPv4 or IPv6 address")
            }
            addresses.append(prefix)
        }
        if mode == .nat, addresses.isEmpty {
            // vif-nat: 10.(domid / 256).(domid % 256).(devid + 1)/16.
            addresses = [
                IPPrefix(
                    .v4([
                        10, UInt8(truncatingIfNeeded: domid / 256), UInt8(domid % 256),
                        UInt8(truncatingIfNeeded: devid + 1),
                    ]), length: 16)
            ]
        }
        return VifSpec(
            domid: domid, devid: devid, mode: mode, name: name, bridge: bridge,
            addresses: addresses, antispoof: config.network.antispoof,
            netdev: config.vif.netdev ?? config.network.netdev,
            mac: nonEmpty(entries.mac))
    }
}

private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}

/// vif-bridge, vif-route and vif-nat: what netback asks for when a vif
/// comes online and goes offline.
public enum VifScripts {
    /// Connects a vif: joins the bridge (bridge mode), or gets dom0's
    /// address as /32, proxy ARP and a host route per guest address (route
    /// and NAT mode); with antispoof, installs its source filter.
    /// Idempotent; undone on failure.
    public static func online(_ vif: VifSpec, on host: NetworkHost) throws(NetConfError) {
        let net = host.netlink
        let link = try net.requireLink(vif.name)
        try transaction { (journal: inout UndoJournal) throws(NetConfError) in
            switch vif.mode {
            case .bridge:
                try joinBridge(vif, link: link, host: host, journal: &journal)
            case .route, .nat:
                try route(vif, link: link, host: host, journal: &journal)
            }
            if vif.antispoof {
                if vif.addresses.isEmpty {
                    // xend: no ip= means no restriction.
                    host.note("antispoof: \(vif.name) has no ip= list, its traffic is not filtered")
                } else {
                    let family = FilterRules.family(for: vif.mode)
                    try host.filter.run(
                        FilterRules.vifOnline(
                            family: family, vif: vif.name, addresses: vif.addresses),
                        operation: "antispoof for \(vif.name)")
                    host.note("antispoof on \(vif.name): \(vif.addresses.map(\.description))")
                    journal.record("antispoof for \(vif.name)") { () throws(NetConfError) in
                        try host.filter.run(
                            FilterRules.vifOffline(family: family, vif: vif.name),
                            operation: "remove antispoof for \(vif.name)")
                    }
                }
            }
        }
    }

    /// Disconnects a vif: removes its filter, routes and address, takes it
    /// down and out of the bridge. A vif that is already gone is fine.
    public static func offline(_ vif: VifSpec, on host: NetworkHost) throws(NetConfError) {
        let net = host.netlink
        if vif.antispoof {
            try host.filter.run(
                FilterRules.vifOffline(family: FilterRules.family(for: vif.mode), vif: vif.name),
                operation: "remove antispoof for \(vif.name)")
        }
        guard let link = try net.link(named: vif.name) else {
            host.note("\(vif.name) is gone already")
            return
        }
        if vif.mode != .bridge {
            let routes = try net.routes().filter {
                $0.uses(link.index) && $0.protocolID == Route.protocolStatic
            }
            for route in routes {
                try net.deleteRoute(route)
                host.note("route \(describe(route, names: [link.index: link.name])) removed")
            }
            // The /32 dom0 (or router) address online gave it; the TAP's
            // own IPv6 link-local address stays.
            for address in try net.addresses()
            where address.interface == link.index && !address.local.address.isV6
                && address.local.isHost
            {
                try net.deleteAddress(address)
                host.note("address \(address.local.cidr) off \(link.name)")
            }
        }
        if link.isUp {
            try net.changeLink(link.index, LinkChange(up: false))
            host.note("\(link.name) down")
        }
        if link.master != 0 {
            try net.changeLink(link.index, LinkChange(master: 0))
            host.note("\(link.name) left its bridge")
        }
    }

    static func joinBridge(
        _ vif: VifSpec, link: Link, host: NetworkHost, journal: inout UndoJournal
    ) throws(NetConfError) {
        let net = host.netlink
        guard let bridge = try net.link(named: vif.bridge) else {
            throw .unsuitableInterface(
                name: vif.bridge,
                reason: "bridge does not exist; start the network-script (proxenos netconf start)")
        }
        guard bridge.isBridge else {
            throw .unsuitableInterface(name: bridge.name, reason: "is not a bridge")
        }
        // Match the bridge's MTU before joining, so a TAP cannot lower it.
        if link.mtu != bridge.mtu, link.master != bridge.index {
            try net.changeLink(link.index, LinkChange(mtu: bridge.mtu))
            journal.record("MTU of \(link.name)") { () throws(NetConfError) in
                try net.changeLink(link.index, LinkChange(mtu: link.mtu))
            }
        }
        if link.master != bridge.index {
            try net.changeLink(link.index, LinkChange(master: bridge.index))
            host.note("\(link.name) joined \(bridge.name)")
            journal.record("\(link.name) joins \(bridge.name)") { () throws(NetConfError) in
                try net.changeLink(link.index, LinkChange(master: link.master))
            }
        }
        try NetworkBridge.bringUp(link, host: host, journal: &journal)
    }

    static func route(
        _ vif: VifSpec, link: Link, host: NetworkHost, journal: inout UndoJournal
    ) throws(NetConfError) {
        let net = host.netlink
        let addresses = try net.addresses()
        let local: IPAddress
        if vif.mode == .nat {
            // vif-nat: the router address is the guest's plus 127 in the
            // last byte (10.0.1.1 → 10.0.1.128).
            guard let guest = vif.addresses.first(where: { !$0.address.isV6 }) else {
                throw .invalidArgument("vif-nat needs an IPv4 address for \(vif.name)")
            }
            var bytes = guest.address.bytes
            guard bytes[3] <= 128 else {
                throw .invalidArgument("vif-nat: \(guest.address) + 127 leaves the byte range")
            }
            bytes[3] += 127
            local = .v4(bytes)
        } else {
            let netdev = try net.requireLink(vif.netdev)
            guard
                let dom0 = addresses.first(where: {
                    $0.interface == netdev.index && !$0.local.address.isV6 && $0.scope == 0
                })
            else {
                throw .unsuitableInterface(
                    name: vif.netdev,
                    reason: "has no IPv4 address for \(vif.name) to use; bring it up or set netdev="
                )
            }
            local = dom0.local.address
        }

        try NetworkBridge.bringUp(link, host: host, journal: &journal)
        let own = InterfaceAddress(interface: link.index, local: IPPrefix(local, length: 32))
        if !addresses.contains(where: { $0.key == own.key }) {
            try net.addAddress(own)
            host.note("address \(own.local.cidr) on \(link.name)")
            journal.record("address on \(link.name)") { () throws(NetConfError) in
                try net.deleteAddress(own)
            }
        }
        if link.proxyARP != true {
            try net.changeLink(link.index, LinkChange(proxyARP: true))
            host.note("proxy ARP on \(link.name)")
            journal.record("proxy ARP on \(link.name)") { () throws(NetConfError) in
                try net.changeLink(link.index, LinkChange(proxyARP: false))
            }
        }
        let present = try net.routes()
        for guest in vif.addresses {
            let destination = vif.mode == .nat ? IPPrefix(guest.address, length: 32) : guest.network
            let route = Route(
                destination: destination, protocolID: Route.protocolStatic,
                scope: Route.scopeLink, priority: guest.address.isV6 ? 1024 : 0,
                preferredSource: guest.address.isV6 ? nil : local,
                nexthops: [Nexthop(interface: link.index)])
            if present.contains(where: { sameRoute($0, route) }) { continue }
            try net.addRoute(route)
            host.note("route \(destination.cidr) via \(link.name)")
            journal.record("route \(destination.cidr)") { () throws(NetConfError) in
                try net.deleteRoute(route)
            }
        }
    }
}
