import CNetlink

#if canImport(Glibc)
    import Glibc
#endif

/// ``RouteNetlink`` over libnl-3 / libnl-route-3, in the network namespace
/// of the thread that opens it (a netlink socket keeps the namespace it was
/// created in).
///
/// Links, addresses and routes go through libnl-route's objects and caches.
/// Bridge options (IFLA_INFO_DATA of kind "bridge") and link changes are
/// raw rtnetlink messages built with libnl's message API, because libnl 3.7
/// has no object API for bridge options.
public final class LibnlRoute: RouteNetlink {
    private let socket: OpaquePointer

    /// Opens and connects a NETLINK_ROUTE socket.
    public init() throws(NetConfError) {
        guard let socket = nl_socket_alloc() else {
            throw .netlink(
                operation: "open netlink socket", code: -NLE_NOMEM, message: "out of memory")
        }
        let status = nl_connect(socket, NETLINK_ROUTE)
        if status < 0 {
            nl_socket_free(socket)
            throw Self.failure("connect netlink socket", status)
        }
        self.socket = socket
    }

    deinit {
        nl_socket_free(socket)
    }

    static func failure(_ operation: String, _ status: Int32) -> NetConfError {
        let message = nl_geterror(status).map { String(cString: $0) } ?? "unknown error"
        return .netlink(operation: operation, code: -status, message: message)
    }

    private func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(NetConfError)
    {
        if status < 0 { throw Self.failure(operation(), status) }
    }

    // MARK: dumps

    /// Runs `body` over each object of a freshly filled cache.
    private func eachObject(
        _ operation: String, fill: (UnsafeMutablePointer<OpaquePointer?>) -> Int32,
        _ body: (OpaquePointer) -> Void
    ) throws(NetConfError) {
        var cache: OpaquePointer?
        try check(fill(&cache), operation)
        guard let cache else { return }
        defer { nl_cache_free(cache) }
        var object = nl_cache_get_first(cache)
        while let current = object {
            body(current)
            object = nl_cache_get_next(current)
        }
    }

    public func links() throws(NetConfError) -> [Link] {
        var result: [Link] = []
        try eachObject("list interfaces", fill: { rtnl_link_alloc_cache(socket, AF_UNSPEC, $0) }) {
            link in
            var proxy: UInt32 = 0
            let hasInet =
                rtnl_link_inet_get_conf(link, UInt32(IPV4_DEVCONF_PROXY_ARP), &proxy) == 0
            result.append(
                Link(
                    index: rtnl_link_get_ifindex(link),
                    name: rtnl_link_get_name(link).map { String(cString: $0) } ?? "",
                    kind: rtnl_link_get_type(link).map { String(cString: $0) },
                    master: rtnl_link_get_master(link),
                    mac: Self.bytes(rtnl_link_get_addr(link)),
                    mtu: rtnl_link_get_mtu(link),
                    flags: rtnl_link_get_flags(link),
                    arpType: rtnl_link_get_arptype(link),
                    proxyARP: hasInet ? proxy != 0 : nil))
        }
        return result
    }

    public func addresses() throws(NetConfError) -> [InterfaceAddress] {
        var result: [InterfaceAddress] = []
        try eachObject("list addresses", fill: { rtnl_addr_alloc_cache(socket, $0) }) { object in
            guard let local = Self.address(rtnl_addr_get_local(object)) else { return }
            let peer = Self.address(rtnl_addr_get_peer(object))
            let valid = rtnl_addr_get_valid_lifetime(object)
            let preferred = rtnl_addr_get_preferred_lifetime(object)
            result.append(
                InterfaceAddress(
                    interface: rtnl_addr_get_ifindex(object),
                    local: IPPrefix(local, length: Int(rtnl_addr_get_prefixlen(object))),
                    peer: peer == local ? nil : peer,
                    broadcast: Self.address(rtnl_addr_get_broadcast(object)),
                    scope: UInt8(truncatingIfNeeded: rtnl_addr_get_scope(object)),
                    flags: rtnl_addr_get_flags(object),
                    label: rtnl_addr_get_label(object).map { String(cString: $0) },
                    validLifetime: valid == UInt32.max ? nil : valid,
                    preferredLifetime: preferred == UInt32.max ? nil : preferred))
        }
        return result
    }

    public func routes() throws(NetConfError) -> [Route] {
        var result: [Route] = []
        try eachObject("list routes", fill: { rtnl_route_alloc_cache(socket, AF_UNSPEC, 0, $0) }) {
            object in
            let family = Int32(rtnl_route_get_family(object))
            guard family == AF_INET || family == AF_INET6 else { return }
            let dst = rtnl_route_get_dst(object)
            let destination =
                Self.address(dst) ?? IPAddress.unspecified(v6: family == AF_INET6)
            let length = dst.map { Int(nl_addr_get_prefixlen($0)) } ?? 0
            var hops: [Nexthop] = []
            for index in 0..<rtnl_route_get_nnexthops(object) {
                guard let hop = rtnl_route_nexthop_n(object, index) else { continue }
                hops.append(
                    Nexthop(
                        interface: rtnl_route_nh_get_ifindex(hop),
                        gateway: Self.address(rtnl_route_nh_get_gateway(hop)),
                        weight: rtnl_route_nh_get_weight(hop),
                        flags: rtnl_route_nh_get_flags(hop)))
            }
            var metrics: [UInt32: UInt32] = [:]
            for metric in 1...CNETLINK_RTAX_MAX {
                var value: UInt32 = 0
                if rtnl_route_get_metric(object, metric, &value) == 0 {
                    metrics[UInt32(metric)] = value
                }
            }
            result.append(
                Route(
                    table: rtnl_route_get_table(object),
                    destination: IPPrefix(destination, length: length),
                    type: rtnl_route_get_type(object),
                    protocolID: rtnl_route_get_protocol(object),
                    scope: rtnl_route_get_scope(object),
                    priority: rtnl_route_get_priority(object),
                    tos: rtnl_route_get_tos(object),
                    preferredSource: Self.address(rtnl_route_get_pref_src(object)),
                    nexthops: hops,
                    metrics: metrics))
        }
        return result
    }

    // MARK: bridges

    public func bridgeSettings(of index: Int32) throws(NetConfError) -> BridgeSettings? {
        // A dump of every link, parsed for IFLA_LINKINFO; libnl-route 3.7
        // does not parse the bridge kind's IFLA_INFO_DATA.
        final class Collector {
            var settings: [Int32: BridgeSettings] = [:]
        }
        let collector = Collector()
        var request = ifinfomsg()
        request.ifi_family = UInt8(AF_UNSPEC)
        try check(
            nl_send_simple(
                socket, Int32(RTM_GETLINK), NLM_F_DUMP, &request,
                MemoryLayout<ifinfomsg>.size),
            "list bridges")
        guard let callbacks = nl_cb_alloc(NL_CB_DEFAULT) else {
            throw .netlink(operation: "list bridges", code: NLE_NOMEM, message: "out of memory")
        }
        defer { nl_cb_put(callbacks) }
        let parse: nl_recvmsg_msg_cb_t = { message, argument in
            guard let message, let argument, let header = nlmsg_hdr(message) else {
                return Int32(NL_SKIP.rawValue)
            }
            let collector = Unmanaged<Collector>.fromOpaque(argument).takeUnretainedValue()
            var top = [UnsafeMutablePointer<nlattr>?](
                repeating: nil, count: Int(CNETLINK_IFLA_MAX) + 1)
            guard
                nlmsg_parse(
                    header, Int32(MemoryLayout<ifinfomsg>.size), &top, CNETLINK_IFLA_MAX, nil)
                    == 0, let linkinfo = top[Int(IFLA_LINKINFO)]
            else { return Int32(NL_OK.rawValue) }
            var info = [UnsafeMutablePointer<nlattr>?](
                repeating: nil, count: Int(CNETLINK_IFLA_INFO_MAX) + 1)
            guard nla_parse_nested(&info, CNETLINK_IFLA_INFO_MAX, linkinfo, nil) == 0,
                let kind = info[Int(IFLA_INFO_KIND)],
                let kindText = nla_get_string(kind), String(cString: kindText) == "bridge",
                let data = info[Int(IFLA_INFO_DATA)]
            else { return Int32(NL_OK.rawValue) }
            var bridge = [UnsafeMutablePointer<nlattr>?](
                repeating: nil, count: Int(CNETLINK_IFLA_BR_MAX) + 1)
            guard nla_parse_nested(&bridge, CNETLINK_IFLA_BR_MAX, data, nil) == 0 else {
                return Int32(NL_OK.rawValue)
            }
            // The payload after the header is an ifinfomsg (checked by nlmsg_parse).
            let index = nlmsg_data(header).assumingMemoryBound(to: ifinfomsg.self).pointee.ifi_index
            let stp = bridge[Int(IFLA_BR_STP_STATE)].map { nla_get_u32($0) } ?? 0
            let delay = bridge[Int(IFLA_BR_FORWARD_DELAY)].map { nla_get_u32($0) } ?? 0
            collector.settings[index] = BridgeSettings(stp: stp != 0, forwardDelay: delay)
            return Int32(NL_OK.rawValue)
        }
        let unmanaged = Unmanaged.passUnretained(collector)
        nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, parse, unmanaged.toOpaque())
        try withExtendedLifetime(collector) { () throws(NetConfError) in
            try check(nl_recvmsgs(socket, callbacks), "list bridges")
        }
        return collector.settings[index]
    }

    public func createBridge(name: String, mac: [UInt8]?, mtu: UInt32?) throws(NetConfError) {
        try sendLinkRequest(
            "create bridge \(name)", type: RTM_NEWLINK,
            flags: NLM_F_CREATE | NLM_F_EXCL, index: 0
        ) { message in
            var status = nla_put_string(message, Int32(IFLA_IFNAME), name)
            if let mac, status >= 0 {
                status = nla_put(message, Int32(IFLA_ADDRESS), Int32(mac.count), mac)
            }
            if let mtu, status >= 0 { status = nla_put_u32(message, Int32(IFLA_MTU), mtu) }
            guard status >= 0, let linkinfo = nla_nest_start(message, Int32(IFLA_LINKINFO))
            else { return min(status, -NLE_NOMEM) }
            status = nla_put_string(message, Int32(IFLA_INFO_KIND), "bridge")
            guard status >= 0, let data = nla_nest_start(message, Int32(IFLA_INFO_DATA))
            else { return min(status, -NLE_NOMEM) }
            // A new bridge has STP off; the forward delay may then be 0.
            status = nla_put_u32(message, Int32(IFLA_BR_STP_STATE), 0)
            if status >= 0 { status = nla_put_u32(message, Int32(IFLA_BR_FORWARD_DELAY), 0) }
            if status >= 0 { status = nla_nest_end(message, data) }
            if status >= 0 { status = nla_nest_end(message, linkinfo) }
            return status
        }
    }

    public func setBridgeSettings(
        of index: Int32, stp: Bool?, forwardDelay: UInt32?
    ) throws(NetConfError) {
        // The kernel applies IFLA_BR_FORWARD_DELAY before IFLA_BR_STP_STATE
        // and refuses a delay below 2 s while STP is on: two requests.
        if let stp {
            try setBridgeOption(index, Int32(IFLA_BR_STP_STATE), stp ? 1 : 0, "STP")
        }
        if let forwardDelay {
            try setBridgeOption(
                index, Int32(IFLA_BR_FORWARD_DELAY), forwardDelay, "forward delay")
        }
    }

    private func setBridgeOption(
        _ index: Int32, _ attribute: Int32, _ value: UInt32, _ what: String
    ) throws(NetConfError) {
        try sendLinkRequest(
            "set bridge \(what) on interface \(index)", type: RTM_NEWLINK, index: index
        ) {
            message in
            guard let linkinfo = nla_nest_start(message, Int32(IFLA_LINKINFO)) else {
                return -NLE_NOMEM
            }
            var status = nla_put_string(message, Int32(IFLA_INFO_KIND), "bridge")
            guard status >= 0, let data = nla_nest_start(message, Int32(IFLA_INFO_DATA))
            else { return min(status, -NLE_NOMEM) }
            status = nla_put_u32(message, attribute, value)
            if status >= 0 { status = nla_nest_end(message, data) }
            if status >= 0 { status = nla_nest_end(message, linkinfo) }
            return status
        }
    }

    // MARK: link changes

    public func deleteLink(_ index: Int32) throws(NetConfError) {
        try sendLinkRequest("delete interface \(index)", type: RTM_DELLINK, index: index) { _ in 0 }
    }

    public func changeLink(_ index: Int32, _ change: LinkChange) throws(NetConfError) {
        try sendLinkRequest(
            "change interface \(index)", type: RTM_NEWLINK, index: index, up: change.up
        ) { message in
            var status: Int32 = 0
            if let master = change.master {
                status = nla_put_u32(message, Int32(IFLA_MASTER), UInt32(bitPattern: master))
            }
            if let mtu = change.mtu, status >= 0 {
                status = nla_put_u32(message, Int32(IFLA_MTU), mtu)
            }
            if let mac = change.mac, status >= 0 {
                status = nla_put(message, Int32(IFLA_ADDRESS), Int32(mac.count), mac)
            }
            if let proxy = change.proxyARP, status >= 0 {
                // IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { [PROXY_ARP] = v } } }
                guard let spec = nla_nest_start(message, Int32(IFLA_AF_SPEC)),
                    let inet = nla_nest_start(message, AF_INET),
                    let conf = nla_nest_start(message, Int32(IFLA_INET_CONF))
                else { return -NLE_NOMEM }
                status = nla_put_u32(
                    message, Int32(IPV4_DEVCONF_PROXY_ARP), proxy ? 1 : 0)
                if status >= 0 { status = nla_nest_end(message, conf) }
                if status >= 0 { status = nla_nest_end(message, inet) }
                if status >= 0 { status = nla_nest_end(message, spec) }
            }
            return status
        }
    }

    /// Builds an ifinfomsg request, lets `fill` add attributes, sends it and
    /// waits for the kernel's acknowledgement.
    private func sendLinkRequest(
        _ operation: String, type: Int, flags: Int32 = 0, index: Int32, up: Bool? = nil,
        fill: (OpaquePointer) -> Int32
    ) throws(NetConfError) {
        guard let message = nlmsg_alloc_simple(Int32(type), flags) else {
            throw .netlink(operation: operation, code: NLE_NOMEM, message: "out of memory")
        }
        var header = ifinfomsg()
        header.ifi_family = UInt8(AF_UNSPEC)
        header.ifi_index = index
        if let up {
            header.ifi_change = Link.flagUp
            header.ifi_flags = up ? Link.flagUp : 0
        }
        var status = nlmsg_append(
            message, &header, MemoryLayout<ifinfomsg>.size, Int32(NLMSG_ALIGNTO))
        if status >= 0 { status = fill(message) }
        if status < 0 {
            nlmsg_free(message)
            throw Self.failure(operation, status)
        }
        // nl_send_sync frees the message whatever happens.
        try check(nl_send_sync(socket, message), operation)
    }

    // MARK: addresses

    public func addAddress(_ address: InterfaceAddress) throws(NetConfError) {
        try withAddress(address) { object throws(NetConfError) in
            try check(rtnl_addr_add(socket, object, 0), "add address \(address.local.cidr)")
        }
    }

    public func deleteAddress(_ address: InterfaceAddress) throws(NetConfError) {
        try withAddress(address) { object throws(NetConfError) in
            try check(rtnl_addr_delete(socket, object, 0), "delete address \(address.local.cidr)")
        }
    }

    private func withAddress(
        _ address: InterfaceAddress, _ body: (OpaquePointer) throws(NetConfError) -> Void
    ) throws(NetConfError) {
        guard let object = rtnl_addr_alloc() else {
            throw .netlink(operation: "address", code: NLE_NOMEM, message: "out of memory")
        }
        defer { rtnl_addr_put(object) }
        let family = address.local.address.isV6 ? AF_INET6 : AF_INET
        rtnl_addr_set_ifindex(object, address.interface)
        rtnl_addr_set_family(object, family)
        try withNLAddress(address.local.address) { local throws(NetConfError) in
            try check(rtnl_addr_set_local(object, local), "address \(address.local)")
        }
        if let peer = address.peer {
            try withNLAddress(peer) { value throws(NetConfError) in
                try check(rtnl_addr_set_peer(object, value), "peer \(peer)")
            }
        }
        // After set_local/set_peer, which reset it from the nl_addr.
        rtnl_addr_set_prefixlen(object, Int32(address.local.length))
        if let broadcast = address.broadcast {
            try withNLAddress(broadcast) { value throws(NetConfError) in
                try check(rtnl_addr_set_broadcast(object, value), "broadcast \(broadcast)")
            }
        }
        rtnl_addr_set_scope(object, Int32(address.scope))
        rtnl_addr_set_flags(object, address.flags & InterfaceAddress.settableFlags)
        if let label = address.label, !address.local.address.isV6 {
            try check(rtnl_addr_set_label(object, label), "label \(label)")
        }
        if address.validLifetime != nil || address.preferredLifetime != nil {
            rtnl_addr_set_valid_lifetime(object, address.validLifetime ?? UInt32.max)
            rtnl_addr_set_preferred_lifetime(object, address.preferredLifetime ?? UInt32.max)
        }
        try body(object)
    }

    // MARK: routes

    public func addRoute(_ route: Route) throws(NetConfError) {
        try withRoute(route) { object throws(NetConfError) in
            try check(rtnl_route_add(socket, object, NLM_F_EXCL), "add route \(describe(route))")
        }
    }

    public func deleteRoute(_ route: Route) throws(NetConfError) {
        try withRoute(route) { object throws(NetConfError) in
            try check(rtnl_route_delete(socket, object, 0), "delete route \(describe(route))")
        }
    }

    private func withRoute(
        _ route: Route, _ body: (OpaquePointer) throws(NetConfError) -> Void
    ) throws(NetConfError) {
        guard let object = rtnl_route_alloc() else {
            throw .netlink(operation: "route", code: NLE_NOMEM, message: "out of memory")
        }
        defer { rtnl_route_put(object) }
        rtnl_route_set_family(object, UInt8(route.isV6 ? AF_INET6 : AF_INET))
        rtnl_route_set_table(object, route.table)
        try withNLAddress(route.destination.address, prefix: route.destination.length) {
            dst throws(NetConfError) in
            try check(rtnl_route_set_dst(object, dst), "route destination \(route.destination)")
        }
        rtnl_route_set_type(object, route.type)
        rtnl_route_set_protocol(object, route.protocolID)
        rtnl_route_set_scope(object, route.scope)
        rtnl_route_set_priority(object, route.priority)
        rtnl_route_set_tos(object, route.tos)
        if let source = route.preferredSource {
            try withNLAddress(source) { value throws(NetConfError) in
                try check(rtnl_route_set_pref_src(object, value), "route source \(source)")
            }
        }
        for (metric, value) in route.metrics {
            try check(rtnl_route_set_metric(object, Int32(metric), value), "route metric \(metric)")
        }
        for hop in route.nexthops {
            guard let nexthop = rtnl_route_nh_alloc() else {
                throw .netlink(operation: "route", code: NLE_NOMEM, message: "out of memory")
            }
            rtnl_route_nh_set_ifindex(nexthop, hop.interface)
            rtnl_route_nh_set_weight(nexthop, hop.weight)
            rtnl_route_nh_set_flags(nexthop, hop.flags & Nexthop.flagOnLink)
            if let gateway = hop.gateway {
                try withNLAddress(gateway) { value throws(NetConfError) in
                    rtnl_route_nh_set_gateway(nexthop, value)
                }
            }
            // The route owns the nexthop from here on.
            rtnl_route_add_nexthop(object, nexthop)
        }
        try body(object)
    }

    // MARK: nl_addr conversion

    /// Bytes of an nl_addr (MAC or IP).
    static func bytes(_ address: OpaquePointer?) -> [UInt8] {
        guard let address, let raw = nl_addr_get_binary_addr(address) else { return [] }
        let length = Int(nl_addr_get_len(address))
        // nl_addr_get_binary_addr points at nl_addr_get_len bytes.
        return Array(UnsafeRawBufferPointer(start: raw, count: length))
    }

    /// An IP address from an nl_addr; nil when absent or empty.
    static func address(_ address: OpaquePointer?) -> IPAddress? {
        IPAddress(bytes: bytes(address))
    }

    private func withNLAddress(
        _ address: IPAddress, prefix: Int? = nil,
        _ body: (OpaquePointer) throws(NetConfError) -> Void
    ) throws(NetConfError) {
        let bytes = address.bytes
        guard
            let value = bytes.withUnsafeBytes({
                nl_addr_build(address.isV6 ? AF_INET6 : AF_INET, $0.baseAddress, $0.count)
            })
        else {
            throw .netlink(
                operation: "address \(address)", code: NLE_NOMEM, message: "out of memory")
        }
        defer { nl_addr_put(value) }
        nl_addr_set_prefixlen(value, Int32(prefix ?? address.bitWidth))
        try body(value)
    }
}

/// `10.0.0.0/24 via 10.0.0.1 dev eth0 table 100`, for messages; interfaces
/// by name where `names` knows them.
func describe(_ route: Route, names: [Int32: String] = [:]) -> String {
    var text = route.destination.length == 0 ? "default" : route.destination.cidr
    for hop in route.nexthops {
        if let gateway = hop.gateway { text += " via \(gateway)" }
        text += " dev \(names[hop.interface] ?? "#\(hop.interface)")"
    }
    if route.table != Route.tableMain { text += " table \(route.table)" }
    return text
}
