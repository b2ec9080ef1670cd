/// A network interface as rtnetlink reports it.
public struct Link: Sendable, Equatable {
    public var index: Int32
    public var name: String
    /// The rtnetlink kind (`bridge`, `veth`, `tun`, ...); nil for hardware.
    public var kind: String?
    /// The bridge (or other master) this interface is enslaved to; 0: none.
    public var master: Int32
    public var mac: [UInt8]
    public var mtu: UInt32
    /// `IFF_*` flags.
    public var flags: UInt32
    /// `ARPHRD_*` link type.
    public var arpType: UInt32
    /// IPv4 `proxy_arp` of the interface; nil when it has no IPv4 settings.
    public var proxyARP: Bool?

    public init(
        index: Int32, name: String, kind: String? = nil, master: Int32 = 0, mac: [UInt8] = [],
        mtu: UInt32 = 1500, flags: UInt32 = 0, arpType: UInt32 = 1, proxyARP: Bool? = false
    ) {
        self.index = index
        self.name = name
        self.kind = kind
        self.master = master
        self.mac = mac
        self.mtu = mtu
        self.flags = flags
        self.arpType = arpType
        self.proxyARP = proxyARP
    }

    /// `IFF_UP`: administratively up.
    public static let flagUp: UInt32 = 0x1
    /// `IFF_LOOPBACK`.
    public static let flagLoopback: UInt32 = 0x8
    /// `ARPHRD_ETHER`: the only link type a bridge accepts.
    public static let arpEther: UInt32 = 1

    public var isUp: Bool { flags & Link.flagUp != 0 }
    public var isBridge: Bool { kind == "bridge" }
}

/// An IPv4 or IPv6 address assigned to an interface.
public struct InterfaceAddress: Sendable, Hashable {
    public var interface: Int32
    /// The local address and its prefix length.
    public var local: IPPrefix
    /// The far end of a point-to-point address; nil for ordinary ones.
    public var peer: IPAddress?
    public var broadcast: IPAddress?
    /// `RT_SCOPE_*`: 0 universe, 253 link, 254 host.
    public var scope: UInt8
    /// `IFA_F_*` flags.
    public var flags: UInt32
    /// The IPv4 label (`eth0`, `eth0:1`).
    public var label: String?
    /// Seconds left; nil: forever.
    public var validLifetime: UInt32?
    public var preferredLifetime: UInt32?

    public init(
        interface: Int32, local: IPPrefix, peer: IPAddress? = nil, broadcast: IPAddress? = nil,
        scope: UInt8 = 0, flags: UInt32 = InterfaceAddress.flagPermanent, label: String? = nil,
        validLifetime: UInt32? = nil, preferredLifetime: UInt32? = nil
    ) {
        self.interface = interface
        self.local = local
        self.peer = peer
        self.broadcast = broadcast
        self.scope = scope
        self.flags = flags
        self.label = label
        self.validLifetime = validLifetime
        self.preferredLifetime = preferredLifetime
    }

    public static let flagSecondary: UInt32 = 0x01
    public static let flagNoDAD: UInt32 = 0x02
    public static let flagHomeAddress: UInt32 = 0x10
    public static let flagPermanent: UInt32 = 0x80
    public static let flagManageTempAddr: UInt32 = 0x100
    public static let flagNoPrefixRoute: UInt32 = 0x200
    public static let flagMulticastAutoJoin: UInt32 = 0x400
    /// The flags a request may set; the rest are the kernel's bookkeeping.
    public static let settableFlags: UInt32 =
        flagNoDAD | flagHomeAddress | flagManageTempAddr | flagNoPrefixRoute
        | flagMulticastAutoJoin

    public static let scopeLink: UInt8 = 253

    /// Whether network-bridge moves this address from the netdev to the
    /// bridge: every IPv4 address; IPv6 ones that are configured (permanent)
    /// and not link-local, since the kernel makes link-local and
    /// autoconfigured ones itself.
    public var isTransferable: Bool {
        if !local.address.isV6 { return true }
        return flags & InterfaceAddress.flagPermanent != 0 && scope != InterfaceAddress.scopeLink
    }

    /// The same address on another interface, with its label renamed.
    public func moved(to index: Int32, from oldName: String, to newName: String)
        -> InterfaceAddress
    {
        var copy = self
        copy.interface = index
        if let label, label == oldName || label.hasPrefix(oldName + ":") {
            copy.label = newName + label.dropFirst(oldName.count)
        }
        return copy
    }

    /// Identity for comparisons: interface and local prefix.
    public var key: String { "\(interface) \(local.cidr)" }
}

/// One way out of a route.
public struct Nexthop: Sendable, Hashable {
    public var interface: Int32
    public var gateway: IPAddress?
    /// Multipath weight (kernel hops - 1); 0 for single-path routes.
    public var weight: UInt8
    /// `RTNH_F_*` (onlink is the one a request may set).
    public var flags: UInt32

    public init(interface: Int32, gateway: IPAddress? = nil, weight: UInt8 = 0, flags: UInt32 = 0) {
        self.interface = interface
        self.gateway = gateway
        self.weight = weight
        self.flags = flags
    }

    public static let flagOnLink: UInt32 = 0x4
}

/// A route as rtnetlink reports it.
public struct Route: Sendable, Hashable {
    public var table: UInt32
    public var destination: IPPrefix
    /// `RTN_*`: 1 unicast, 2 local, ...
    public var type: UInt8
    /// `RTPROT_*`: 2 kernel, 3 boot, 4 static, ...
    public var protocolID: UInt8
    /// `RT_SCOPE_*`.
    public var scope: UInt8
    /// The metric.
    public var priority: UInt32
    public var tos: UInt8
    public var preferredSource: IPAddress?
    public var nexthops: [Nexthop]
    /// `RTAX_*` → value (mtu, advmss, ...).
    public var metrics: [UInt32: UInt32]

    public init(
        table: UInt32 = Route.tableMain, destination: IPPrefix, type: UInt8 = Route.typeUnicast,
        protocolID: UInt8 = Route.protocolBoot, scope: UInt8 = 0, priority: UInt32 = 0,
        tos: UInt8 = 0, preferredSource: IPAddress? = nil, nexthops: [Nexthop],
        metrics: [UInt32: UInt32] = [:]
    ) {
        self.table = table
        self.destination = destination
        self.type = type
        self.protocolID = protocolID
        self.scope = scope
        self.priority = priority
        self.tos = tos
        self.preferredSource = preferredSource
        self.nexthops = nexthops
        self.metrics = metrics
    }

    public static let tableMain: UInt32 = 254
    public static let tableLocal: UInt32 = 255
    public static let typeUnicast: UInt8 = 1
    public static let protocolKernel: UInt8 = 2
    public static let protocolBoot: UInt8 = 3
    public static let protocolStatic: UInt8 = 4
    public static let protocolRA: UInt8 = 9
    public static let scopeUniverse: UInt8 = 0
    public static let scopeLink: UInt8 = 253

    public var isV6: Bool { destination.address.isV6 }

    /// Whether any nexthop leaves through the interface.
    public func uses(_ index: Int32) -> Bool { nexthops.contains { $0.interface == index } }

    /// Whether network-bridge moves this route with the netdev's addresses.
    /// Routes the kernel makes (prefix routes of addresses, IPv6 link-local
    /// and multicast, router advertisements) appear on the bridge by
    /// themselves; the local table follows the addresses too.
    public var isTransferable: Bool {
        table != Route.tableLocal && protocolID != Route.protocolKernel
            && protocolID != Route.protocolRA
    }

    /// The same route leaving through another interface.
    public func moved(from old: Int32, to new: Int32) -> Route {
        var copy = self
        copy.nexthops = nexthops.map { hop in
            var hop = hop
            if hop.interface == old { hop.interface = new }
            return hop
        }
        return copy
    }
}

/// The bridge settings network-bridge cares about.
public struct BridgeSettings: Sendable, Equatable {
    /// Spanning tree on (any STP mode) or off.
    public var stp: Bool
    /// Forward delay in centiseconds (clock_t at USER_HZ 100).
    public var forwardDelay: UInt32

    public init(stp: Bool, forwardDelay: UInt32) {
        self.stp = stp
        self.forwardDelay = forwardDelay
    }
}

/// A change to one interface; nil fields stay as they are.
public struct LinkChange: Sendable, Equatable {
    public var up: Bool?
    /// The master to enslave to; 0 releases the interface.
    public var master: Int32?
    public var mtu: UInt32?
    public var mac: [UInt8]?
    public var proxyARP: Bool?

    public init(
        up: Bool? = nil, master: Int32? = nil, mtu: UInt32? = nil, mac: [UInt8]? = nil,
        proxyARP: Bool? = nil
    ) {
        self.up = up
        self.master = master
        self.mtu = mtu
        self.mac = mac
        self.proxyARP = proxyARP
    }
}

/// The rtnetlink operations netconf needs: the seam between the network
/// logic and the kernel (libnl in production, an in-memory fake in tests).
/// Every call works in the network namespace the implementation was opened in.
public protocol RouteNetlink: AnyObject {
    func links() throws(NetConfError) -> [Link]
    func addresses() throws(NetConfError) -> [InterfaceAddress]
    func routes() throws(NetConfError) -> [Route]
    /// Settings of a bridge; nil when the interface is not a bridge.
    func bridgeSettings(of index: Int32) throws(NetConfError) -> BridgeSettings?
    /// Creates a bridge, down, with STP off and forward delay 0.
    func createBridge(name: String, mac: [UInt8]?, mtu: UInt32?) throws(NetConfError)
    func setBridgeSettings(of index: Int32, stp: Bool?, forwardDelay: UInt32?) throws(NetConfError)
    func deleteLink(_ index: Int32) throws(NetConfError)
    func changeLink(_ index: Int32, _ change: LinkChange) throws(NetConfError)
    func addAddress(_ address: InterfaceAddress) throws(NetConfError)
    func deleteAddress(_ address: InterfaceAddress) throws(NetConfError)
    func addRoute(_ route: Route) throws(NetConfError)
    func deleteRoute(_ route: Route) throws(NetConfError)
}

extension RouteNetlink {
    /// The interface of that name, or nil.
    public func link(named name: String) throws(NetConfError) -> Link? {
        try links().first { $0.name == name }
    }

    /// The interface of that name, or ``NetConfError/noSuchInterface(_:)``.
    public func requireLink(_ name: String) throws(NetConfError) -> Link {
        guard let link = try link(named: name) else { throw .noSuchInterface(name) }
        return link
    }
}

/// Reads and writes `/proc/sys` keys (`net/ipv4/ip_forward`): IPv4
/// forwarding for all interfaces, present and future, has no netlink
/// interface.
public protocol SysctlAccess: AnyObject {
    func read(_ key: String) throws(NetConfError) -> String
    func write(_ key: String, _ value: String) throws(NetConfError)
}

/// Runs nftables commands (the `nft` language) as one atomic transaction.
public protocol PacketFilter: AnyObject {
    func run(_ commands: String, operation: String) throws(NetConfError)
    /// The listing of a table, or nil when it does not exist.
    func listTable(family: String, name: String) throws(NetConfError) -> String?
}
