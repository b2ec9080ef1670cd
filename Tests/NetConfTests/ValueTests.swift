import Testing

@testable import NetConf

@Suite("addresses, records, rule text")
struct ValueTests {
    @Test(arguments: [
        ("10.0.0.1", "10.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("255.255.255.255", "255.255.255.255"),
        ("2001:db8::1", "2001:db8::1"), ("::", "::"), ("::1", "::1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("fe80::a:b:c:d", "fe80::a:b:c:d"), ("::ffff:10.0.0.1", "::ffff:a00:1"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("1:0:3:4:5:6:7:8", "1:0:3:4:5:6:7:8"),
    ])
    func addressesFormatCanonically(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01234.0.0.1", "a.b.c.d", "1::2::3",
        "1:2:3:4:5:6:7:8:9",
        "12345::", "::g", "1.2.3.4/", "fe80:::1",
    ])
    func invalidAddresses(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func prefixes() throws {
        let host = try #require(IPPrefix("10.0.0.5"))
        #expect(host.isHost && host.length == 32)
        #expect(host.description == "10.0.0.5")
        let net = try #require(IPPrefix("10.1.2.3/20"))
        #expect(net.network.cidr == "10.1.0.0/20")
        #expect(IPPrefix("2001:db8::1/64")?.network.cidr == "2001:db8::/64")
        #expect(IPPrefix("10.0.0.0/33") == nil)
        #expect(IPPrefix("10.0.0.0/x") == nil)
        #expect(IPPrefix("2001:db8::/129") == nil)
    }

    @Test func bridgeRecordRoundTrips() throws {
        let record = BridgeRecord(
            bridge: "xenbr0", netdev: "eth0", netdevIndex: 2, createdBridge: true,
            previousSettings: BridgeSettings(stp: true, forwardDelay: 1500), bridgeWasUp: false,
            netdevWasUp: true, netdevMaster: 0,
            addresses: [
                InterfaceAddress(
                    interface: 2, local: IPPrefix("10.0.0.1/24")!,
                    broadcast: IPAddress("10.0.0.255"), label: "eth0 \"odd\""),
                InterfaceAddress(
                    interface: 2, local: IPPrefix("10.9.0.1/32")!, peer: IPAddress("10.9.0.2"),
                    flags: 0x81, validLifetime: 3600, preferredLifetime: 1800),
                InterfaceAddress(interface: 2, local: IPPrefix("2001:db8::1/64")!),
            ],
            routes: [
                Route(
                    destination: IPPrefix("0.0.0.0/0")!,
                    nexthops: [Nexthop(interface: 2, gateway: IPAddress("10.0.0.254"))],
                    metrics: [2: 1400]),
                Route(
                    table: 100, destination: IPPrefix("10.8.0.0/16")!, protocolID: 4, priority: 7,
                    preferredSource: IPAddress("10.0.0.1"),
                    nexthops: [
                        Nexthop(interface: 2, gateway: IPAddress("10.0.0.2"), weight: 1),
                        Nexthop(interface: 5, gateway: IPAddress("10.0.1.2"), weight: 2, flags: 4),
                    ]),
            ],
            antispoof: true)
        let text = RecordCodec.encode(record)
        #expect(try RecordCodec.decodeBridge(text, path: "r") == record)
    }

    @Test func routingRecordRoundTrips() throws {
        let record = RoutingRecord(
            mode: .route, netdev: "eth0", ipForward: "0", proxyARP: false, antispoof: true,
            masquerade: false)
        #expect(try RecordCodec.decodeRouting(RecordCodec.encode(record), path: "r") == record)
    }

    @Test func damagedRecordsNameTheProblem() {
        let cases = [
            "(netconf-bridge", "(other)", "(netconf-bridge (bridge x))",
            "(netconf-routing (mode sideways) (netdev e) (ip-forward 0) (antispoof no) (masquerade no))",
        ]
        for text in cases {
            #expect {
                _ = try RecordCodec.decodeBridge(text, path: "/run/r.sxp")
                _ = try RecordCodec.decodeRouting(text, path: "/run/r.sxp")
            } throws: { error in
                guard case .badRecord(let path, _) = error as? NetConfError else { return false }
                return path == "/run/r.sxp"
            }
        }
    }

    @Test func antispoofRuleText() {
        let text = FilterRules.vifOnline(
            family: "bridge", vif: "vif1.0",
            addresses: [IPPrefix("10.0.0.20")!, IPPrefix("10.1.2.3/16")!, IPPrefix("2001:db8::7")!])
        #expect(text.contains("add rule bridge proxenos prerouting iifname vmap @vifs"))
        #expect(
            text.contains(
                "add rule bridge proxenos vif-vif1.0 arp saddr ip != { 10.0.0.20, 10.1.0.0/16 } drop"
            ))
        #expect(
            text.contains(
                "add rule bridge proxenos vif-vif1.0 ip saddr != { 10.0.0.20, 10.1.0.0/16 } drop"))
        #expect(text.contains("ip6 saddr != { ::, fe80::/10, 2001:db8::7 } drop"))
        #expect(text.contains("ether type { 8021q, 8021ad } drop"))
        #expect(text.contains("add element bridge proxenos vifs { \"vif1.0\" : jump vif-vif1.0 }"))
        let v4only = FilterRules.vifOnline(
            family: "inet", vif: "vif2.0", addresses: [IPPrefix("10.0.0.50")!])
        #expect(v4only.contains("meta protocol ip6 drop"))
        #expect(!v4only.contains("arp"))
        #expect(!v4only.contains("ether"))
        let offline = FilterRules.vifOffline(family: "inet", vif: "vif2.0")
        #expect(offline.contains("delete element inet proxenos vifs { \"vif2.0\" }"))
        #expect(offline.contains("delete chain inet proxenos vif-vif2.0"))
    }

    @Test func chainNames() {
        #expect(isValidChainInterface("vif1.0"))
        #expect(isValidChainInterface("guest_eth-0"))
        #expect(!isValidChainInterface("0vif"))
        #expect(!isValidChainInterface("vif 1"))
        #expect(!isValidChainInterface("vif\"1"))
        #expect(!isValidChainInterface("vif;1"))
        #expect(!isValidChainInterface(""))
    }
}
