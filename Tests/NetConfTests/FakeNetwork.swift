@testable import NetConf

/// An in-memory kernel for the netconf logic: links, addresses, routes,
/// bridge settings, sysctls, nftables tables and records, with the kernel
/// behaviours the logic depends on (prefix routes follow addresses, a
/// gateway must be reachable, deleting a link takes its addresses and routes)
/// and a switch that makes the Nth change fail.
final class FakeNetwork: RouteNetlink, SysctlAccess, PacketFilter, RecordStore {
    struct Snapshot: Equatable {
        var links: [Link]
        var addresses: Set<InterfaceAddress>
        var routes: Set<Route>
        var settings: [Int32: BridgeSettings]
        var sysctls: [String: String]
        var tables: [String: String]
        var records: [String: String]
    }

    var linkList: [Link] = []
    var addressSet: Set<InterfaceAddress> = []
    var routeSet: Set<Route> = []
    var settings: [Int32: BridgeSettings] = [:]
    var sysctls: [String: String] = ["net/ipv4/ip_forward": "0"]
    /// "family name" → the command text that made it.
    var tables: [String: String] = [:]
    var records: [String: String] = [:]
    var nextIndex: Int32 = 10

    /// Changes so far; the change numbered `failAt` fails.
    var changes = 0
    var failAt: Int?

    var snapshot: Snapshot {
        Snapshot(
            links: linkList.sorted { $0.index < $1.index }, addresses: addressSet,
            routes: routeSet, settings: settings, sysctls: sysctls, tables: tables,
            records: records)
    }

    private func change(_ what: String) throws(NetConfError) {
        changes += 1
        if changes == failAt {
            throw .netlink(operation: what, code: 5, message: "injected failure")
        }
    }

    // MARK: building the initial state

    @discardableResult
    func addLink(_ name: String, kind: String? = nil, up: Bool = true, mac: [UInt8]? = nil)
        -> Link
    {
        nextIndex += 1
        let link = Link(
            index: nextIndex, name: name, kind: kind,
            mac: mac ?? [0x02, 0, 0, 0, 0, UInt8(nextIndex)], flags: up ? Link.flagUp : 0,
            proxyARP: false)
        linkList.append(link)
        if kind == "bridge" {
            settings[link.index] = BridgeSettings(stp: false, forwardDelay: 1500)
        }
        return link
    }

    func index(_ name: String) -> Int32 { linkList.first { $0.name == name }?.index ?? -1 }

    // MARK: RouteNetlink

    func links() throws(NetConfError) -> [Link] { linkList }
    func addresses() throws(NetConfError) -> [InterfaceAddress] {
        addressSet.sorted { $0.key < $1.key }
    }
    func routes() throws(NetConfError) -> [Route] { Array(routeSet) }

    func bridgeSettings(of index: Int32) throws(NetConfError) -> BridgeSettings? {
        settings[index]
    }

    func createBridge(name: String, mac: [UInt8]?, mtu: UInt32?) throws(NetConfError) {
        try change("create bridge \(name)")
        guard !linkList.contains(where: { $0.name == name }) else {
            throw .netlink(operation: "create bridge", code: 17, message: "exists")
        }
        nextIndex += 1
        linkList.append(
            Link(
                index: nextIndex, name: name, kind: "bridge", mac: mac ?? [2, 9, 9, 9, 9, 9],
                mtu: mtu ?? 1500, flags: 0, proxyARP: false))
        settings[nextIndex] = BridgeSettings(stp: false, forwardDelay: 0)
    }

    func setBridgeSettings(of index: Int32, stp: Bool?, forwardDelay: UInt32?) throws(NetConfError)
    {
        try change("bridge settings")
        guard var current = settings[index] else {
            throw .netlink(operation: "bridge settings", code: 95, message: "not a bridge")
        }
        if let stp { current.stp = stp }
        if let forwardDelay { current.forwardDelay = forwardDelay }
        settings[index] = current
    }

    func deleteLink(_ index: Int32) throws(NetConfError) {
        try change("delete link")
        guard linkList.contains(where: { $0.index == index }) else {
            throw .netlink(operation: "delete link", code: 19, message: "no device")
        }
        linkList.removeAll { $0.index == index }
        for position in linkList.indices where linkList[position].master == index {
            linkList[position].master = 0
        }
        addressSet = addressSet.filter { $0.interface != index }
        routeSet = routeSet.filter { !$0.uses(index) }
        settings[index] = nil
    }

    func changeLink(_ index: Int32, _ request: LinkChange) throws(NetConfError) {
        try change("change link")
        guard let position = linkList.firstIndex(where: { $0.index == index }) else {
            throw .netlink(operation: "change link", code: 19, message: "no device")
        }
        if let master = request.master {
            guard master == 0 || settings[master] != nil else {
                throw .netlink(operation: "set master", code: 22, message: "not a bridge")
            }
            linkList[position].master = master
        }
        if let up = request.up {
            linkList[position].flags = up ? Link.flagUp : 0
        }
        if let mtu = request.mtu { linkList[position].mtu = mtu }
        if let mac = request.mac { linkList[position].mac = mac }
        if let proxy = request.proxyARP { linkList[position].proxyARP = proxy }
    }

    private func prefixRoute(_ address: InterfaceAddress) -> Route {
        Route(
            destination: address.local.network, protocolID: Route.protocolKernel,
            scope: Route.scopeLink, priority: address.local.address.isV6 ? 256 : 0,
            preferredSource: address.local.address.isV6 ? nil : address.local.address,
            nexthops: [Nexthop(interface: address.interface)])
    }

    func addAddress(_ address: InterfaceAddress) throws(NetConfError) {
        try change("add address")
        guard linkList.contains(where: { $0.index == address.interface }) else {
            throw .netlink(operation: "add address", code: 19, message: "no device")
        }
        guard !addressSet.contains(where: { $0.key == address.key }) else {
            throw .netlink(operation: "add address", code: 17, message: "exists")
        }
        addressSet.insert(address)
        if !address.local.isHost { routeSet.insert(prefixRoute(address)) }
    }

    func deleteAddress(_ address: InterfaceAddress) throws(NetConfError) {
        try change("delete address")
        guard let stored = addressSet.first(where: { $0.key == address.key }) else {
            throw .netlink(operation: "delete address", code: 99, message: "no such address")
        }
        addressSet.remove(stored)
        routeSet.remove(prefixRoute(stored))
        // The last IPv4 address gone: the kernel flushes the interface's
        // IPv4 routes.
        if !stored.local.address.isV6,
            !addressSet.contains(where: {
                $0.interface == stored.interface && !$0.local.address.isV6
            })
        {
            routeSet = routeSet.filter { $0.isV6 || !$0.uses(stored.interface) }
        }
    }

    func addRoute(_ route: Route) throws(NetConfError) {
        try change("add route")
        guard !routeSet.contains(where: { sameRoute($0, route) }) else {
            throw .netlink(operation: "add route", code: 17, message: "exists")
        }
        for hop in route.nexthops {
            guard let link = linkList.first(where: { $0.index == hop.interface }), link.isUp else {
                throw .netlink(operation: "add route", code: 100, message: "network is down")
            }
            if let gateway = hop.gateway {
                let reachable = routeSet.contains { existing in
                    existing.uses(hop.interface) && existing.destination.length > 0
                        && existing.destination.address.isV6 == gateway.isV6
                        && gateway.masked(to: existing.destination.length)
                            == existing.destination.network.address
                }
                guard reachable else {
                    throw .netlink(
                        operation: "add route", code: 101, message: "unreachable gateway")
                }
            }
        }
        routeSet.insert(route)
    }

    func deleteRoute(_ route: Route) throws(NetConfError) {
        try change("delete route")
        guard let stored = routeSet.first(where: { sameRoute($0, route) }) else {
            throw .netlink(operation: "delete route", code: 3, message: "no such process")
        }
        routeSet.remove(stored)
    }

    // MARK: SysctlAccess

    func read(_ key: String) throws(NetConfError) -> String {
        guard let value = sysctls[key] else {
            throw .file(path: key, operation: "read", .noSuchFileOrDirectory)
        }
        return value
    }

    func write(_ key: String, _ value: String) throws(NetConfError) {
        try change("sysctl \(key)")
        sysctls[key] = value
    }

    // MARK: PacketFilter (tables only, by the commands that touch them)

    func run(_ commands: String, operation: String) throws(NetConfError) {
        try change("nft \(operation)")
        var next = tables
        for line in commands.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 4 else { continue }
            let key = "\(words[2]) \(words[3])"
            switch (words[0], words[1]) {
            case ("add", "table"): next[key] = next[key] ?? ""
            case ("delete", "table"): next[key] = nil
            case ("add", _), ("flush", _), ("delete", _):
                guard next[key] != nil else {
                    throw .nftables(operation: operation, message: "no table \(key)")
                }
                next[key, default: ""] += line + "\n"
            default:
                break
            }
        }
        tables = next
    }

    func listTable(family: String, name: String) throws(NetConfError) -> String? {
        tables["\(family) \(name)"]
    }

    // MARK: RecordStore

    func load(_ name: String) throws(NetConfError) -> String? { records[name] }
    func save(_ name: String, _ text: String) throws(NetConfError) {
        try change("save record")
        records[name] = text
    }
    func remove(_ name: String) throws(NetConfError) {
        try change("remove record")
        records[name] = nil
    }
    func location(of name: String) -> String { "/fake/\(name).sxp" }

    var host: NetworkHost {
        NetworkHost(netlink: self, sysctl: self, filter: self, records: self)
    }
}
