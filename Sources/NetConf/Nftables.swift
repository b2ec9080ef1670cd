import CNftables
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// ``PacketFilter`` through libnftables in-process (no `nft` binary). Each
/// `run` is one nftables transaction: all of it applies or none.
///
/// The context is made on first use, so networks without filtering never
/// need nf_tables; and only after checking that the kernel speaks nftables'
/// netlink protocol, because libnftables calls exit(3) when it cannot open
/// that socket.
public final class LibNftables: PacketFilter {
    private var context: OpaquePointer?

    public init() {}

    deinit {
        if let context { nft_ctx_free(context) }
    }

    private func openContext(for operation: String) throws(NetConfError) -> OpaquePointer {
        if let context { return context }
        // NETLINK_NETFILTER; opening it also makes the kernel load nfnetlink.
        let probe = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 12)
        guard probe >= 0 else {
            throw .nftables(
                operation: operation,
                message: "the kernel has no nftables netlink interface "
                    + "(nfnetlink and nf_tables modules): \(Errno(rawValue: errno))")
        }
        close(probe)
        guard let created = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw .nftables(operation: operation, message: "cannot create an nftables context")
        }
        // Capture output and errors instead of printing them.
        nft_ctx_buffer_output(created)
        nft_ctx_buffer_error(created)
        context = created
        return created
    }

    private func execute(_ commands: String, operation: String) throws(NetConfError) -> (
        ok: Bool, output: String, error: String
    ) {
        let context = try openContext(for: operation)
        let status = nft_run_cmd_from_buffer(context, commands)
        let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
        let error = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? ""
        return (status == 0, output, error)
    }

    public func run(_ commands: String, operation: String) throws(NetConfError) {
        let result = try execute(commands, operation: operation)
        if !result.ok {
            let message = result.error.isEmpty ? "rejected" : result.error
            throw .nftables(operation: operation, message: message)
        }
    }

    public func listTable(family: String, name: String) throws(NetConfError) -> String? {
        let result = try execute(
            "list table \(family) \(name)", operation: "list table \(family) \(name)")
        if result.ok { return result.output }
        if result.error.contains("No such file or directory") { return nil }
        throw .nftables(operation: "list table \(family) \(name)", message: result.error)
    }
}

/// The nftables rule sets netconf installs, as text in the nft language.
/// Every name that enters the text has been checked by
/// ``isValidInterfaceName(_:)`` or ``isValidChainInterface(_:)``, and
/// addresses are typed values, so the text cannot be subverted.
public enum FilterRules {
    /// Our table, in the `bridge` family for bridged vifs and in `inet` for
    /// routed ones.
    public static let table = "proxenos"
    /// Our NAT table (`ip` family).
    public static let natTable = "proxenos_nat"

    /// The family antispoofing uses for a vif mode.
    public static func family(for mode: VifMode) -> String {
        mode == .bridge ? "bridge" : "inet"
    }

    /// The table, the vif→chain map and the base chain that dispatches
    /// packets entering through a vif to that vif's chain. Idempotent.
    public static func base(family: String) -> String {
        """
        add table \(family) \(table)
        add map \(family) \(table) vifs { type ifname : verdict ; }
        add chain \(family) \(table) prerouting { type filter hook prerouting priority filter ; policy accept ; }
        flush chain \(family) \(table) prerouting
        add rule \(family) \(table) prerouting iifname vmap @vifs

        """
    }

    /// The chain of one vif.
    public static func chain(for vif: String) -> String { "vif-" + vif }

    /// Drops packets from `vif` whose source address is not among
    /// `addresses` (xend's antispoof), idempotently.
    ///
    /// IPv4 and ARP sources must be in the IPv4 entries (DHCP requests from
    /// 0.0.0.0 are let through, as xend did); IPv6 sources must be in the
    /// IPv6 entries, link-local or unspecified (neighbour discovery) — with
    /// no IPv6 entry all IPv6 is dropped. In the bridge family VLAN-tagged
    /// frames are dropped, since the rules could not see inside them.
    public static func vifOnline(family: String, vif: String, addresses: [IPPrefix]) -> String {
        let chain = chain(for: vif)
        let v4 = addresses.filter { !$0.address.isV6 }.map(\.network.description)
        let v6 = addresses.filter { $0.address.isV6 }.map(\.network.description)
        var rules: [String] = []
        if family == "bridge" {
            rules.append("ether type { 8021q, 8021ad } drop")
            if v4.isEmpty {
                rules.append("ether type arp drop")
            } else {
                rules.append("arp saddr ip != { \(v4.joined(separator: ", ")) } drop")
            }
            rules.append("ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept")
        }
        if v4.isEmpty {
            rules.append("meta protocol ip drop")
        } else {
            rules.append("ip saddr != { \(v4.joined(separator: ", ")) } drop")
        }
        if v6.isEmpty {
            rules.append("meta protocol ip6 drop")
        } else {
            let allowed = ["::", "fe80::/10"] + v6
            rules.append("ip6 saddr != { \(allowed.joined(separator: ", ")) } drop")
        }
        var text = base(family: family)
        text += "add chain \(family) \(table) \(chain)\n"
        text += "flush chain \(family) \(table) \(chain)\n"
        for rule in rules {
            text += "add rule \(family) \(table) \(chain) \(rule)\n"
        }
        text += "add element \(family) \(table) vifs { \"\(vif)\" : jump \(chain) }\n"
        return text
    }

    /// Removes a vif's chain and map entry; succeeds when they are absent
    /// (each object is added first, so the deletions always find it).
    public static func vifOffline(family: String, vif: String) -> String {
        let chain = chain(for: vif)
        return """
            add table \(family) \(table)
            add map \(family) \(table) vifs { type ifname : verdict ; }
            add chain \(family) \(table) \(chain)
            add element \(family) \(table) vifs { "\(vif)" : jump \(chain) }
            delete element \(family) \(table) vifs { "\(vif)" }
            flush chain \(family) \(table) \(chain)
            delete chain \(family) \(table) \(chain)

            """
    }

    /// Deletes a whole table; succeeds when it is absent.
    public static func removeTable(family: String, name: String) -> String {
        "add table \(family) \(name)\ndelete table \(family) \(name)\n"
    }

    /// network-nat: masquerade everything leaving through `netdev`.
    public static func masquerade(netdev: String) -> String {
        """
        add table ip \(natTable)
        delete table ip \(natTable)
        add table ip \(natTable)
        add chain ip \(natTable) postrouting { type nat hook postrouting priority srcnat ; policy accept ; }
        add rule ip \(natTable) postrouting oifname "\(netdev)" masquerade

        """
    }

    /// The rule `masquerade(netdev:)` installs, as `nft list` prints it.
    public static func masqueradeListing(netdev: String) -> String {
        "oifname \"\(netdev)\" masquerade"
    }
}

/// Whether a vif name can name an nftables chain unquoted (nft 1.0.6 does
/// not accept quoted chain names): a letter, then letters, digits, `.`,
/// `_` and `-`; at most 15 bytes.
public func isValidChainInterface(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, (1...15).contains(name.utf8.count),
        first.isASCII, first.properties.isAlphabetic
    else { return false }
    return name.unicodeScalars.allSatisfy { scalar in
        scalar.isASCII
            && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                || scalar == "." || scalar == "_" || scalar == "-")
    }
}
