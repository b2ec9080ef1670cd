import SXP

/// What `start` recorded so that `stop` can put the network back: written
/// as SXP (read back with the same parser as the configuration).
public struct BridgeRecord: Sendable, Equatable {
    public var bridge: String
    public var netdev: String
    public var netdevIndex: Int32
    /// Whether start created the bridge (stop deletes it then).
    public var createdBridge: Bool
    /// Settings of a bridge that existed before; restored by stop.
    public var previousSettings: BridgeSettings?
    public var bridgeWasUp: Bool
    public var netdevWasUp: Bool
    public var netdevMaster: Int32
    /// The netdev's addresses as they were, before moving to the bridge.
    public var addresses: [InterfaceAddress]
    /// The netdev's routes as they were.
    public var routes: [Route]
    /// Whether start installed the antispoof table.
    public var antispoof: Bool

    public init(
        bridge: String, netdev: String, netdevIndex: Int32, createdBridge: Bool,
        previousSettings: BridgeSettings?, bridgeWasUp: Bool, netdevWasUp: Bool,
        netdevMaster: Int32, addresses: [InterfaceAddress], routes: [Route], antispoof: Bool
    ) {
        self.bridge = bridge
        self.netdev = netdev
        self.netdevIndex = netdevIndex
        self.createdBridge = createdBridge
        self.previousSettings = previousSettings
        self.bridgeWasUp = bridgeWasUp
        self.netdevWasUp = netdevWasUp
        self.netdevMaster = netdevMaster
        self.addresses = addresses
        self.routes = routes
        self.antispoof = antispoof
    }

    /// The record's file name for a bridge.
    public static func name(bridge: String) -> String { "bridge-" + bridge }
}

/// What network-route and network-nat changed.
public struct RoutingRecord: Sendable, Equatable {
    public var mode: NetworkMode
    public var netdev: String
    /// `net/ipv4/ip_forward` before start.
    public var ipForward: String
    /// The netdev's proxy_arp before start (route mode).
    public var proxyARP: Bool?
    /// Whether start installed an antispoof table (inet family).
    public var antispoof: Bool
    /// Whether start installed the masquerade table.
    public var masquerade: Bool

    public init(
        mode: NetworkMode, netdev: String, ipForward: String, proxyARP: Bool?, antispoof: Bool,
        masquerade: Bool
    ) {
        self.mode = mode
        self.netdev = netdev
        self.ipForward = ipForward
        self.proxyARP = proxyARP
        self.antispoof = antispoof
        self.masquerade = masquerade
    }

    public static let name = "routing"
}

// MARK: encoding

/// Encodes records as SXP and decodes them, reporting damage precisely.
public enum RecordCodec {
    private static let location = SourceLocation(line: 0, column: 0)

    static func symbol(_ text: String) -> SXPNode { SXPNode(.symbol(text), at: location) }
    static func string(_ text: String) -> SXPNode { SXPNode(.string(text), at: location) }
    static func integer(_ value: some BinaryInteger) -> SXPNode {
        SXPNode(.integer(Int64(value)), at: location)
    }
    static func list(_ items: [SXPNode]) -> SXPNode { SXPNode(.list(items), at: location) }
    static func field(_ key: String, _ value: SXPNode) -> SXPNode { list([symbol(key), value]) }
    static func flag(_ key: String, _ value: Bool) -> SXPNode { field(key, symbol(yesNo(value))) }

    public static func encode(_ record: BridgeRecord) -> String {
        var items: [SXPNode] = [
            symbol("netconf-bridge"),
            field("bridge", string(record.bridge)),
            field("netdev", string(record.netdev)),
            field("netdev-index", integer(record.netdevIndex)),
            flag("created-bridge", record.createdBridge),
            flag("bridge-was-up", record.bridgeWasUp),
            flag("netdev-was-up", record.netdevWasUp),
            field("netdev-master", integer(record.netdevMaster)),
            flag("antispoof", record.antispoof),
        ]
        if let settings = record.previousSettings {
            items.append(
                list([
                    symbol("previous-settings"), flag("stp", settings.stp),
                    field("forward-delay", integer(settings.forwardDelay)),
                ]))
        }
        items += record.addresses.map(encode)
        items += record.routes.map(encode)
        return lines(items)
    }

    public static func encode(_ record: RoutingRecord) -> String {
        var items: [SXPNode] = [
            symbol("netconf-routing"),
            field("mode", symbol(record.mode.rawValue)),
            field("netdev", string(record.netdev)),
            field("ip-forward", string(record.ipForward)),
            flag("antispoof", record.antispoof),
            flag("masquerade", record.masquerade),
        ]
        if let proxy = record.proxyARP { items.append(flag("proxy-arp", proxy)) }
        return lines(items)
    }

    /// One field per line, for an administrator reading the file.
    private static func lines(_ items: [SXPNode]) -> String {
        guard let head = items.first else { return "()\n" }
        var text = "(" + SXPWriter.config.render(head)
        for item in items.dropFirst() { text += "\n  " + SXPWriter.config.render(item) }
        return text + ")\n"
    }

    public static func encode(_ address: InterfaceAddress) -> SXPNode {
        var items = [
            symbol("address"),
            field("dev", integer(address.interface)),
            field("local", symbol(address.local.cidr)),
            field("scope", integer(address.scope)),
            field("flags", integer(address.flags)),
        ]
        if let peer = address.peer { items.append(field("peer", symbol(peer.description))) }
        if let broadcast = address.broadcast {
            items.append(field("broadcast", symbol(broadcast.description)))
        }
        if let label = address.label { items.append(field("label", string(label))) }
        if let valid = address.validLifetime { items.append(field("valid", integer(valid))) }
        if let preferred = address.preferredLifetime {
            items.append(field("preferred", integer(preferred)))
        }
        return list(items)
    }

    public static func encode(_ route: Route) -> SXPNode {
        var items = [
            symbol("route"),
            field("table", integer(route.table)),
            field("dst", symbol(route.destination.cidr)),
            field("type", integer(route.type)),
            field("protocol", integer(route.protocolID)),
            field("scope", integer(route.scope)),
            field("priority", integer(route.priority)),
            field("tos", integer(route.tos)),
        ]
        if let source = route.preferredSource {
            items.append(field("src", symbol(source.description)))
        }
        for hop in route.nexthops {
            var fields = [
                symbol("nexthop"), field("dev", integer(hop.interface)),
                field("weight", integer(hop.weight)), field("flags", integer(hop.flags)),
            ]
            if let gateway = hop.gateway {
                fields.append(field("via", symbol(gateway.description)))
            }
            items.append(list(fields))
        }
        for (metric, value) in route.metrics.sorted(by: { $0.key < $1.key }) {
            items.append(list([symbol("metric"), integer(metric), integer(value)]))
        }
        return list(items)
    }

    // MARK: decoding

    /// A view of `(key value...)` children with typed accessors that name
    /// the damaged field.
    struct Fields {
        let path: String
        let kind: String
        let items: [SXPNode]

        func damaged(_ reason: String) -> NetConfError {
            .badRecord(path: path, reason: "\(kind): \(reason)")
        }

        func all(_ key: String) -> [[SXPNode]] {
            items.compactMap { node in
                guard let list = node.listItems, case .symbol(key)? = list.first?.value else {
                    return nil
                }
                return Array(list.dropFirst())
            }
        }

        func value(_ key: String) -> SXPNode? { all(key).first?.first }

        func text(_ key: String) throws(NetConfError) -> String {
            guard let text = value(key)?.atomText else { throw damaged("no \(key)") }
            return text
        }

        func optionalText(_ key: String) -> String? { value(key)?.atomText }

        func integer<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) throws(NetConfError)
            -> T
        {
            guard case .integer(let number)? = value(key)?.value, let result = T(exactly: number)
            else { throw damaged("\(key) is not a valid number") }
            return result
        }

        func optionalInteger<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self)
            throws(NetConfError) -> T?
        {
            value(key) == nil ? nil : try integer(key, as: T.self)
        }

        func flag(_ key: String) throws(NetConfError) -> Bool {
            guard let text = value(key)?.atomText, let flag = parseXendBool(text) else {
                throw damaged("\(key) is not yes or no")
            }
            return flag
        }

        func prefix(_ key: String) throws(NetConfError) -> IPPrefix {
            guard let prefix = IPPrefix(try text(key)) else {
                throw damaged("\(key) is not an address")
            }
            return prefix
        }

        func address(_ key: String) throws(NetConfError) -> IPAddress? {
            guard let text = optionalText(key) else { return nil }
            guard let address = IPAddress(text) else { throw damaged("\(key) is not an address") }
            return address
        }
    }

    private static func top(_ text: String, path: String, head: String) throws(NetConfError)
        -> Fields
    {
        let nodes: [SXPNode]
        do {
            nodes = try SXPParser.parse(text, file: path)
        } catch {
            throw .badRecord(path: path, reason: error.description)
        }
        guard nodes.count == 1, let items = nodes[0].listItems,
            case .symbol(head)? = items.first?.value
        else { throw .badRecord(path: path, reason: "not a (\(head) ...) record") }
        return Fields(path: path, kind: head, items: Array(items.dropFirst()))
    }

    public static func decodeBridge(_ text: String, path: String) throws(NetConfError)
        -> BridgeRecord
    {
        let fields = try top(text, path: path, head: "netconf-bridge")
        var previous: BridgeSettings?
        if let settings = fields.all("previous-settings").first {
            let sub = Fields(path: path, kind: "previous-settings", items: settings)
            previous = BridgeSettings(
                stp: try sub.flag("stp"), forwardDelay: try sub.integer("forward-delay"))
        }
        var addresses: [InterfaceAddress] = []
        for items in fields.all("address") {
            addresses.append(try decodeAddress(Fields(path: path, kind: "address", items: items)))
        }
        var routes: [Route] = []
        for items in fields.all("route") {
            routes.append(try decodeRoute(Fields(path: path, kind: "route", items: items)))
        }
        return BridgeRecord(
            bridge: try fields.text("bridge"), netdev: try fields.text("netdev"),
            netdevIndex: try fields.integer("netdev-index"),
            createdBridge: try fields.flag("created-bridge"), previousSettings: previous,
            bridgeWasUp: try fields.flag("bridge-was-up"),
            netdevWasUp: try fields.flag("netdev-was-up"),
            netdevMaster: try fields.integer("netdev-master"), addresses: addresses,
            routes: routes, antispoof: try fields.flag("antispoof"))
    }

    public static func decodeRouting(_ text: String, path: String) throws(NetConfError)
        -> RoutingRecord
    {
        let fields = try top(text, path: path, head: "netconf-routing")
        guard let mode = NetworkMode(rawValue: try fields.text("mode")) else {
            throw fields.damaged("unknown mode")
        }
        return RoutingRecord(
            mode: mode, netdev: try fields.text("netdev"), ipForward: try fields.text("ip-forward"),
            proxyARP: fields.value("proxy-arp") == nil ? nil : try fields.flag("proxy-arp"),
            antispoof: try fields.flag("antispoof"), masquerade: try fields.flag("masquerade"))
    }

    static func decodeAddress(_ fields: Fields) throws(NetConfError) -> InterfaceAddress {
        InterfaceAddress(
            interface: try fields.integer("dev"), local: try fields.prefix("local"),
            peer: try fields.address("peer"), broadcast: try fields.address("broadcast"),
            scope: try fields.integer("scope"), flags: try fields.integer("flags"),
            label: fields.optionalText("label"),
            validLifetime: try fields.optionalInteger("valid"),
            preferredLifetime: try fields.optionalInteger("preferred"))
    }

    static func decodeRoute(_ fields: Fields) throws(NetConfError) -> Route {
        var hops: [Nexthop] = []
        for items in fields.all("nexthop") {
            let hop = Fields(path: fields.path, kind: "nexthop", items: items)
            hops.append(
                Nexthop(
                    interface: try hop.integer("dev"), gateway: try hop.address("via"),
                    weight: try hop.integer("weight"), flags: try hop.integer("flags")))
        }
        var metrics: [UInt32: UInt32] = [:]
        for items in fields.all("metric") {
            guard items.count == 2, case .integer(let key) = items[0].value,
                case .integer(let value) = items[1].value, let metric = UInt32(exactly: key),
                let number = UInt32(exactly: value)
            else { throw fields.damaged("bad metric") }
            metrics[metric] = number
        }
        return Route(
            table: try fields.integer("table"), destination: try fields.prefix("dst"),
            type: try fields.integer("type"), protocolID: try fields.integer("protocol"),
            scope: try fields.integer("scope"), priority: try fields.integer("priority"),
            tos: try fields.integer("tos"), preferredSource: try fields.address("src"),
            nexthops: hops, metrics: metrics)
    }
}
