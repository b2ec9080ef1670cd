/// network-route and network-nat: dom0 forwards between its netdev and the
/// guests' vifs. Route mode answers ARP for guests on the netdev (proxy
/// ARP); NAT mode hides them behind the netdev's address (masquerade).
public enum NetworkRouting {
    static let ipForward = "net/ipv4/ip_forward"

    /// Turns IPv4 forwarding on and, for route mode, proxy ARP on the
    /// netdev; for NAT mode installs masquerading on the netdev. Idempotent;
    /// undone completely on failure.
    public static func start(_ script: NetworkScript, on host: NetworkHost) throws(NetConfError) {
        guard script.mode == .route || script.mode == .nat else {
            throw .invalidArgument("network-route/-nat called for \(script.mode.rawValue) mode")
        }
        let net = host.netlink
        let previousText = try host.records.load(RoutingRecord.name)
        let existing = try previousText.map { text throws(NetConfError) in
            try RecordCodec.decodeRouting(text, path: host.records.location(of: RoutingRecord.name))
        }
        let netdev = try net.requireLink(script.netdev)
        let forwarding = try host.sysctl.read(ipForward)

        try transaction { (journal: inout UndoJournal) throws(NetConfError) in
            var record =
                existing
                ?? RoutingRecord(
                    mode: script.mode, netdev: netdev.name, ipForward: forwarding,
                    proxyARP: script.mode == .route ? (netdev.proxyARP ?? false) : nil,
                    antispoof: false, masquerade: false)
            record.antispoof = record.antispoof || script.antispoof
            record.masquerade = record.masquerade || script.mode == .nat
            if existing != record {
                try host.records.save(RoutingRecord.name, RecordCodec.encode(record))
                journal.record("write record") { () throws(NetConfError) in
                    if let previousText {
                        try host.records.save(RoutingRecord.name, previousText)
                    } else {
                        try host.records.remove(RoutingRecord.name)
                    }
                }
            }

            if forwarding != "1" {
                try host.sysctl.write(ipForward, "1")
                host.note("IPv4 forwarding on")
                journal.record("IPv4 forwarding on") { () throws(NetConfError) in
                    try host.sysctl.write(ipForward, forwarding)
                }
            }
            if script.mode == .route, netdev.proxyARP != true {
                try net.changeLink(netdev.index, LinkChange(proxyARP: true))
                host.note("proxy ARP on \(netdev.name)")
                journal.record("proxy ARP on \(netdev.name)") { () throws(NetConfError) in
                    try net.changeLink(netdev.index, LinkChange(proxyARP: false))
                }
            }
            if script.mode == .nat {
                try installMasquerade(netdev: netdev.name, host: host, journal: &journal)
            }
            if script.antispoof {
                try NetworkBridge.installAntispoofBase(
                    family: "inet", host: host, journal: &journal)
            }
        }
    }

    /// Restores forwarding and proxy ARP as start found them and removes
    /// the tables start installed.
    public static func stop(_ script: NetworkScript, on host: NetworkHost) throws(NetConfError) {
        guard let text = try host.records.load(RoutingRecord.name) else {
            host.note(
                "no record in \(host.records.location(of: RoutingRecord.name)): nothing to stop")
            return
        }
        let record = try RecordCodec.decodeRouting(
            text, path: host.records.location(of: RoutingRecord.name))
        let net = host.netlink
        try transaction { (journal: inout UndoJournal) throws(NetConfError) in
            if record.masquerade {
                try host.filter.run(
                    FilterRules.removeTable(family: "ip", name: FilterRules.natTable),
                    operation: "remove masquerade table")
                host.note("removed masquerade")
            }
            if record.antispoof || script.antispoof {
                try host.filter.run(
                    FilterRules.removeTable(family: "inet", name: FilterRules.table),
                    operation: "remove antispoof table")
                host.note("removed antispoof table inet \(FilterRules.table)")
            }
            if let proxy = record.proxyARP, let netdev = try net.link(named: record.netdev),
                netdev.proxyARP != proxy
            {
                try net.changeLink(netdev.index, LinkChange(proxyARP: proxy))
                host.note("proxy ARP \(proxy ? "on" : "off") on \(netdev.name)")
                let current = netdev.proxyARP ?? false
                journal.record("proxy ARP on \(netdev.name)") { () throws(NetConfError) in
                    try net.changeLink(netdev.index, LinkChange(proxyARP: current))
                }
            }
            let forwarding = try host.sysctl.read(ipForward)
            if forwarding != record.ipForward {
                try host.sysctl.write(ipForward, record.ipForward)
                host.note("IPv4 forwarding back to \(record.ipForward)")
                journal.record("IPv4 forwarding") { () throws(NetConfError) in
                    try host.sysctl.write(ipForward, forwarding)
                }
            }
            try host.records.remove(RoutingRecord.name)
        }
    }

    static func installMasquerade(
        netdev: String, host: NetworkHost, journal: inout UndoJournal
    ) throws(NetConfError) {
        let filter = host.filter
        let listing = try filter.listTable(family: "ip", name: FilterRules.natTable)
        if let listing, listing.contains(FilterRules.masqueradeListing(netdev: netdev)) { return }
        try filter.run(FilterRules.masquerade(netdev: netdev), operation: "install masquerade")
        host.note("masquerade on \(netdev)")
        journal.record("install masquerade") { () throws(NetConfError) in
            try filter.run(
                FilterRules.removeTable(family: "ip", name: FilterRules.natTable),
                operation: "remove masquerade table")
        }
    }
}
