/// network-bridge: a bridge (xenbr0) in front of the physical interface,
/// which lends it its MAC address, IP addresses and routes, so that guests'
/// vifs join the same link as dom0.
public enum NetworkBridge {
    /// Creates the bridge (STP off, forward delay 0), enslaves the netdev,
    /// moves its IPv4 and IPv6 addresses and its routes (the default route
    /// too) to the bridge and brings both up.
    ///
    /// Idempotent: a second start finds everything in place and changes
    /// nothing. On failure every step already taken is undone.
    public static func start(_ script: NetworkScript, on host: NetworkHost) throws(NetConfError) {
        let net = host.netlink
        let recordName = BridgeRecord.name(bridge: script.bridge)
        let previousText = try host.records.load(recordName)
        let existing = try previousText.map { text throws(NetConfError) in
            try RecordCodec.decodeBridge(text, path: host.records.location(of: recordName))
        }

        let links = try net.links()
        guard let netdev = links.first(where: { $0.name == script.netdev }) else {
            throw .noSuchInterface(script.netdev)
        }
        var bridge = links.first(where: { $0.name == script.bridge })
        var names = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        try checkBridgeable(netdev, bridge: bridge, links: links)
        if let bridge, !bridge.isBridge {
            throw .unsuitableInterface(name: bridge.name, reason: "exists and is not a bridge")
        }
        let previousSettings = try bridge.flatMap { link throws(NetConfError) in
            try net.bridgeSettings(of: link.index)
        }

        let addresses = ordered(
            try net.addresses().filter { $0.interface == netdev.index && $0.isTransferable })
        let routes = try net.routes().filter { $0.uses(netdev.index) && $0.isTransferable }

        try transaction { (journal: inout UndoJournal) throws(NetConfError) in
            // The record goes first: if netconf dies half-way, stop still
            // knows what the netdev looked like.
            var record =
                existing
                ?? BridgeRecord(
                    bridge: script.bridge, netdev: netdev.name, netdevIndex: netdev.index,
                    createdBridge: bridge == nil, previousSettings: previousSettings,
                    bridgeWasUp: bridge?.isUp ?? false, netdevWasUp: netdev.isUp,
                    netdevMaster: netdev.master, addresses: [], routes: [],
                    antispoof: false)
            record.addresses += addresses
            record.routes += routes
            record.antispoof = record.antispoof || script.antispoof
            if existing != record {
                try host.records.save(recordName, RecordCodec.encode(record))
                journal.record("write \(host.records.location(of: recordName))") {
                    () throws(NetConfError) in
                    if let previousText {
                        try host.records.save(recordName, previousText)
                    } else {
                        try host.records.remove(recordName)
                    }
                }
            }

            if bridge == nil {
                try net.createBridge(name: script.bridge, mac: netdev.mac, mtu: netdev.mtu)
                let created = try net.requireLink(script.bridge)
                bridge = created
                names[created.index] = created.name
                host.note("created bridge \(script.bridge)")
                journal.record("create bridge \(script.bridge)") { () throws(NetConfError) in
                    try net.deleteLink(created.index)
                }
            }
            guard let bridge else { throw .noSuchInterface(script.bridge) }

            let settings =
                try net.bridgeSettings(of: bridge.index)
                ?? BridgeSettings(stp: false, forwardDelay: 0)
            if settings.stp {
                try net.setBridgeSettings(of: bridge.index, stp: false, forwardDelay: nil)
                host.note("STP off on \(bridge.name)")
                journal.record("STP off on \(bridge.name)") { () throws(NetConfError) in
                    try net.setBridgeSettings(of: bridge.index, stp: true, forwardDelay: nil)
                }
            }
            if settings.forwardDelay != 0 {
                try net.setBridgeSettings(of: bridge.index, stp: nil, forwardDelay: 0)
                host.note("forward delay 0 on \(bridge.name)")
                journal.record("forward delay on \(bridge.name)") { () throws(NetConfError) in
                    try net.setBridgeSettings(
                        of: bridge.index, stp: nil, forwardDelay: settings.forwardDelay)
                }
            }

            if netdev.master != bridge.index {
                try net.changeLink(netdev.index, LinkChange(master: bridge.index))
                host.note("enslaved \(netdev.name) to \(bridge.name)")
                journal.record("enslave \(netdev.name)") { () throws(NetConfError) in
                    try net.changeLink(netdev.index, LinkChange(master: netdev.master))
                }
            }
            try bringUp(bridge, host: host, journal: &journal)
            try bringUp(netdev, host: host, journal: &journal)

            for route in routes {
                try net.deleteRoute(route)
                journal.record("delete route \(describe(route, names: names))") {
                    () throws(NetConfError) in
                    try net.addRoute(route)
                }
            }
            for address in addresses {
                let moved = address.moved(to: bridge.index, from: netdev.name, to: bridge.name)
                try net.addAddress(moved)
                host.note("address \(address.local.cidr) on \(bridge.name)")
                journal.record("add \(moved.local.cidr) to \(bridge.name)") {
                    () throws(NetConfError) in
                    try net.deleteAddress(moved)
                }
            }
            // Secondaries before their primary: deleting a primary IPv4
            // address takes its secondaries with it.
            for address in addresses.reversed() {
                try net.deleteAddress(address)
                host.note("address \(address.local.cidr) off \(netdev.name)")
                journal.record("delete \(address.local.cidr) from \(netdev.name)") {
                    () throws(NetConfError) in
                    try net.addAddress(address)
                }
            }
            for route in routes {
                let moved = route.moved(from: netdev.index, to: bridge.index)
                try net.addRoute(moved)
                host.note("route \(describe(route, names: names)) now via \(bridge.name)")
                journal.record("add route \(describe(moved, names: names))") {
                    () throws(NetConfError) in
                    try net.deleteRoute(moved)
                }
            }

            if script.antispoof {
                try installAntispoofBase(family: "bridge", host: host, journal: &journal)
            }
        }
    }

    /// Puts the netdev back as start found it: addresses and routes return,
    /// the netdev leaves the bridge, and the bridge goes if start made it.
    /// Without a record (start never ran) there is nothing to undo.
    public static func stop(_ script: NetworkScript, on host: NetworkHost) throws(NetConfError) {
        let net = host.netlink
        let recordName = BridgeRecord.name(bridge: script.bridge)
        guard let text = try host.records.load(recordName) else {
            host.note("no record in \(host.records.location(of: recordName)): nothing to stop")
            return
        }
        let record = try RecordCodec.decodeBridge(text, path: host.records.location(of: recordName))
        let links = try net.links()
        guard
            let netdev = links.first(where: { $0.index == record.netdevIndex })
                ?? links.first(where: { $0.name == record.netdev })
        else { throw .noSuchInterface(record.netdev) }
        let bridge = links.first(where: { $0.name == record.bridge && $0.isBridge })
        let names = Dictionary(links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        // Records name interfaces by index; the netdev keeps its index for
        // its lifetime, but map the recorded one in case it was re-created.
        let addresses = record.addresses.map { address in
            var address = address
            if address.interface == record.netdevIndex { address.interface = netdev.index }
            return address
        }
        let routes = record.routes.map { $0.moved(from: record.netdevIndex, to: netdev.index) }
        let currentAddresses = try net.addresses()
        let currentRoutes = try net.routes()
        func hasAddress(_ address: InterfaceAddress) -> Bool {
            currentAddresses.contains { $0.key == address.key }
        }
        func hasRoute(_ route: Route) -> Bool {
            currentRoutes.contains { sameRoute($0, route) }
        }

        try transaction { (journal: inout UndoJournal) throws(NetConfError) in
            if let bridge {
                for route in routes {
                    let moved = route.moved(from: netdev.index, to: bridge.index)
                    guard hasRoute(moved) else { continue }
                    try net.deleteRoute(moved)
                    journal.record("delete route \(describe(moved, names: names))") {
                        () throws(NetConfError) in
                        try net.addRoute(moved)
                    }
                }
            }
            for address in addresses where !hasAddress(address) {
                try net.addAddress(address)
                host.note("address \(address.local.cidr) back on \(netdev.name)")
                journal.record("add \(address.local.cidr) to \(netdev.name)") {
                    () throws(NetConfError) in
                    try net.deleteAddress(address)
                }
            }
            if let bridge {
                for address in addresses.reversed() {
                    let moved = address.moved(to: bridge.index, from: netdev.name, to: bridge.name)
                    guard hasAddress(moved) else { continue }
                    try net.deleteAddress(moved)
                    journal.record("delete \(moved.local.cidr) from \(bridge.name)") {
                        () throws(NetConfError) in
                        try net.addAddress(moved)
                    }
                }
            }
            for route in routes where !hasRoute(route) {
                try net.addRoute(route)
                host.note("route \(describe(route, names: names)) back via \(netdev.name)")
                journal.record("add route \(describe(route, names: names))") {
                    () throws(NetConfError) in
                    try net.deleteRoute(route)
                }
            }
            if let bridge, netdev.master == bridge.index, record.netdevMaster != bridge.index {
                try net.changeLink(netdev.index, LinkChange(master: record.netdevMaster))
                host.note("released \(netdev.name) from \(bridge.name)")
                journal.record("release \(netdev.name)") { () throws(NetConfError) in
                    try net.changeLink(netdev.index, LinkChange(master: bridge.index))
                }
            }
            if netdev.isUp != record.netdevWasUp {
                try net.changeLink(netdev.index, LinkChange(up: record.netdevWasUp))
                journal.record("set \(netdev.name) \(record.netdevWasUp ? "up" : "down")") {
                    () throws(NetConfError) in
                    try net.changeLink(netdev.index, LinkChange(up: netdev.isUp))
                }
            }
            // The table may also have come from a vif going online.
            if record.antispoof || script.antispoof {
                let filter = host.filter
                try filter.run(
                    FilterRules.removeTable(family: "bridge", name: FilterRules.table),
                    operation: "remove antispoof table")
                host.note("removed antispoof table bridge \(FilterRules.table)")
                journal.record("remove antispoof table") { () throws(NetConfError) in
                    try filter.run(FilterRules.base(family: "bridge"), operation: "antispoof table")
                }
            }
            if let bridge, !record.createdBridge {
                if let previous = record.previousSettings,
                    let current = try net.bridgeSettings(of: bridge.index), current != previous
                {
                    try net.setBridgeSettings(
                        of: bridge.index, stp: nil, forwardDelay: previous.forwardDelay)
                    journal.record("forward delay of \(bridge.name)") { () throws(NetConfError) in
                        try net.setBridgeSettings(
                            of: bridge.index, stp: nil, forwardDelay: current.forwardDelay)
                    }
                    if previous.stp != current.stp {
                        try net.setBridgeSettings(
                            of: bridge.index, stp: previous.stp, forwardDelay: nil)
                        journal.record("STP of \(bridge.name)") { () throws(NetConfError) in
                            try net.setBridgeSettings(
                                of: bridge.index, stp: current.stp, forwardDelay: nil)
                        }
                    }
                }
                if !record.bridgeWasUp, bridge.isUp {
                    try net.changeLink(bridge.index, LinkChange(up: false))
                    journal.record("\(bridge.name) down") { () throws(NetConfError) in
                        try net.changeLink(bridge.index, LinkChange(up: true))
                    }
                }
            }
            try host.records.remove(recordName)
            journal.record("remove \(host.records.location(of: recordName))") {
                () throws(NetConfError) in
                try host.records.save(recordName, text)
            }
            if let bridge, record.createdBridge {
                // Last: nothing after it can fail, so it never needs undoing.
                try net.deleteLink(bridge.index)
                host.note("deleted bridge \(bridge.name)")
            }
        }
    }

    /// Refuses interfaces a bridge cannot take, before anything changes.
    static func checkBridgeable(_ netdev: Link, bridge: Link?, links: [Link]) throws(NetConfError) {
        if netdev.flags & Link.flagLoopback != 0 {
            throw .unsuitableInterface(name: netdev.name, reason: "a loopback cannot join a bridge")
        }
        if netdev.isBridge {
            throw .unsuitableInterface(
                name: netdev.name, reason: "is itself a bridge; name its physical port as netdev")
        }
        if netdev.arpType != Link.arpEther || netdev.mac.count != 6 {
            throw .unsuitableInterface(
                name: netdev.name, reason: "is not an Ethernet interface; only those can be bridged"
            )
        }
        if netdev.master != 0, netdev.master != bridge?.index {
            let owner =
                links.first { $0.index == netdev.master }?.name ?? "interface \(netdev.master)"
            throw .unsuitableInterface(name: netdev.name, reason: "is already enslaved to \(owner)")
        }
    }

    /// IPv4 before IPv6; within a family the kernel's order (primaries first).
    static func ordered(_ addresses: [InterfaceAddress]) -> [InterfaceAddress] {
        addresses.filter { !$0.local.address.isV6 } + addresses.filter { $0.local.address.isV6 }
    }

    static func bringUp(
        _ link: Link, host: NetworkHost, journal: inout UndoJournal
    ) throws(NetConfError) {
        guard !link.isUp else { return }
        let net = host.netlink
        try net.changeLink(link.index, LinkChange(up: true))
        host.note("\(link.name) up")
        journal.record("\(link.name) up") { () throws(NetConfError) in
            try net.changeLink(link.index, LinkChange(up: false))
        }
    }

    /// Installs the antispoof table's base unless it is there already.
    static func installAntispoofBase(
        family: String, host: NetworkHost, journal: inout UndoJournal
    ) throws(NetConfError) {
        let filter = host.filter
        let listing = try filter.listTable(family: family, name: FilterRules.table)
        if let listing, listing.contains("iifname vmap @vifs") { return }
        try filter.run(FilterRules.base(family: family), operation: "install antispoof table")
        host.note("antispoof table \(family) \(FilterRules.table)")
        if listing == nil {
            journal.record("install antispoof table") { () throws(NetConfError) in
                try filter.run(
                    FilterRules.removeTable(family: family, name: FilterRules.table),
                    operation: "remove antispoof table")
            }
        }
    }
}

/// Whether two routes are the same kernel route (what a delete matches).
func sameRoute(_ a: Route, _ b: Route) -> Bool {
    func hops(_ route: Route) -> Set<String> {
        Set(route.nexthops.map { "\($0.interface) \($0.gateway?.description ?? "-")" })
    }
    return a.isV6 == b.isV6 && a.table == b.table
        && a.destination.network == b.destination.network && a.tos == b.tos
        && a.priority == b.priority && hops(a) == hops(b)
}
