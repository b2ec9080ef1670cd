/// How dom0 gets its own address at boot, from the kernel command line:
/// `ip=` in the kernel's format (Documentation/admin-guide/nfs/nfsroot.rst,
/// `ip=client:server:gw:netmask:hostname:device:autoconf:dns0:dns1`, or
/// `ip=dhcp|off|none|on|any`), `proxenos.net=IFACE` naming the boot interface,
/// and `BOOTIF=01-aa-bb-cc-dd-ee-ff` (PXELINUX, iPXE) naming it by MAC.
/// Without any of them: DHCP on the network-script's netdev.
public struct Dom0AddressPlan: Sendable, Equatable {
    /// What to do on the interface.
    public enum Method: Sendable, Equatable {
        /// No address for dom0 (`ip=off`, `ip=none`).
        case off
        /// Ask a DHCP server.
        case dhcp
        /// A fixed address.
        case fixed(StaticAddress)
    }

    /// A fixed address and what goes with it.
    public struct StaticAddress: Sendable, Equatable {
        public var address: IPPrefix
        public var gateway: IPAddress?
        public var nameServers: [IPAddress]
        public var hostname: String?
    }

    /// Where the interface name comes from.
    public enum Interface: Sendable, Equatable {
        /// Named (`proxenos.net=` or `ip=`'s device field).
        case named(String)
        /// The NIC with this MAC address (`BOOTIF=`).
        case mac([UInt8])
        /// The network-script's netdev (eth0 unless xend-config.sxp says).
        case scriptNetdev
    }

    public var method: Method
    public var interface: Interface

    public init(method: Method, interface: Interface) {
        self.method = method
        self.interface = interface
    }

    /// Why a command line's address settings cannot be used.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The plan for a command line's `ip=`, `proxenos.net=` and `BOOTIF=`
    /// values (nil when absent).
    public static func parse(ip: String?, net: String?, bootif: String?) throws(Problem)
        -> Dom0AddressPlan
    {
        var interface = Interface.scriptNetdev
        if let bootif, !bootif.isEmpty {
            interface = .mac(try parseBootif(bootif))
        }
        var method = Method.dhcp
        if let ip {
            let (parsedMethod, device) = try parseIP(ip)
            method = parsedMethod
            if let device { interface = .named(device) }
        }
        if let net {
            guard isInterfaceName(net) else {
                throw Problem(message: "proxenos.net=\(net) is not an interface name")
            }
            interface = .named(net)
        }
        return Dom0AddressPlan(method: method, interface: interface)
    }

    /// `ip=` alone: the method and the device field, if any.
    static func parseIP(_ text: String) throws(Problem) -> (Method, String?) {
        switch text {
        case "off", "none": return (.off, nil)
        case "", "on", "any", "dhcp", "bootp", "both", "rarp", "dhcp6": return (.dhcp, nil)
        default: break
        }
        let fields = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 2 else {
            throw Problem(message: "ip=\(text): neither off/dhcp nor client:server:gw:netmask:...")
        }
        func field(_ index: Int) -> String { index < fields.count ? fields[index] : "" }
        let device = field(5)
        if !device.isEmpty && !isInterfaceName(device) {
            throw Problem(message: "ip=\(text): \(device) is not an interface name")
        }
        let autoconf = field(6)
        let client = field(0)
        switch autoconf {
        case "", "off", "none", "on", "any", "dhcp", "bootp", "both", "rarp": break
        default:
            throw Problem(message: "ip=\(text): autoconf \(autoconf) is not off, on, dhcp or any")
        }
        // The kernel's rule (ipconfig.c): a given client address is used as
        // it is; without one, the address is asked for unless autoconf is off.
        if client.isEmpty {
            let off = autoconf == "off" || autoconf == "none"
            return (off ? .off : .dhcp, device.isEmpty ? nil : device)
        }
        guard case .some(.v4(let clientBytes)) = IPAddress(client) else {
            throw Problem(message: "ip=\(text): client \(client) is not an IPv4 address")
        }
        var length = defaultPrefixLength(clientBytes)
        let mask = field(3)
        if !mask.isEmpty {
            guard let parsed = prefixLength(ofMask: mask) else {
                throw Problem(message: "ip=\(text): netmask \(mask) is not a contiguous mask")
            }
            length = parsed
        }
        var gateway: IPAddress?
        if !field(2).isEmpty {
            guard let parsed = IPAddress(field(2)), !parsed.isV6 else {
                throw Problem(message: "ip=\(text): gateway \(field(2)) is not an IPv4 address")
            }
            gateway = parsed
        }
        var servers: [IPAddress] = []
        for index in [7, 8] where !field(index).isEmpty {
            guard let server = IPAddress(field(index)) else {
                throw Problem(message: "ip=\(text): name server \(field(index)) is not an address")
            }
            servers.append(server)
        }
        let hostname = field(4).isEmpty ? nil : field(4)
        return (
            .fixed(
                StaticAddress(
                    address: IPPrefix(.v4(clientBytes), length: length), gateway: gateway,
                    nameServers: servers, hostname: hostname)),
            device.isEmpty ? nil : device
        )
    }

    /// The classful default the kernel uses without a netmask.
    static func defaultPrefixLength(_ bytes: [UInt8]) -> Int {
        switch bytes[0] {
        case 0..<128: return 8
        case 128..<192: return 16
        default: return 24
        }
    }

    /// `255.255.255.0` → 24; nil for a non-contiguous or malformed mask.
    static func prefixLength(ofMask text: String) -> Int? {
        guard case .some(.v4(let bytes)) = IPAddress(text) else { return nil }
        let value = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let length = (~value).leadingZeroBitCount
        let expected: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - length)
        return value == expected ? length : nil
    }

    /// PXELINUX's `01-aa-bb-cc-dd-ee-ff` (hardware type 1, Ethernet).
    static func parseBootif(_ text: String) throws(Problem) -> [UInt8] {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 7, parts[0] == "01" else {
            throw Problem(message: "BOOTIF=\(text) is not 01-aa-bb-cc-dd-ee-ff")
        }
        var bytes: [UInt8] = []
        for part in parts.dropFirst() {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else {
                throw Problem(message: "BOOTIF=\(text) is not 01-aa-bb-cc-dd-ee-ff")
            }
            bytes.append(byte)
        }
        return bytes
    }

    /// A Linux interface name: 1–15 bytes, no `/`, no space, not `.` or `..`.
    public static func isInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && name != "." && name != ".."
            && !name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 <= 0x20 || $0 == 0x3a })
    }

    /// The interface to configure, given the links present and the
    /// network-script: in bridge mode the bridge carries dom0's address
    /// when the boot interface is the bridge's netdev (the bridge has the
    /// netdev's MAC, so a DHCP server sees the same client); otherwise the
    /// boot interface itself.
    public func resolveInterface(links: [Link], script: NetworkScript) -> Result<String, Problem> {
        let boot: String
        switch interface {
        case .named(let name): boot = name
        case .scriptNetdev: boot = script.mode == .none ? "eth0" : script.netdev
        case .mac(let mac):
            // The bridge shares the MAC: pick the interface that is not one.
            guard let link = links.first(where: { $0.mac == mac && !$0.isBridge }) else {
                return .failure(Problem(message: "BOOTIF: no interface has MAC \(Self.hex(mac))"))
            }
            boot = link.name
        }
        if script.mode == .bridge && boot == script.netdev
            && links.contains(where: { $0.name == script.bridge && $0.isBridge })
        {
            return .success(script.bridge)
        }
        guard links.contains(where: { $0.name == boot }) else {
            return .failure(Problem(message: "no interface \(boot)"))
        }
        return .success(boot)
    }

    static func hex(_ mac: [UInt8]) -> String {
        mac.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
    }
}
