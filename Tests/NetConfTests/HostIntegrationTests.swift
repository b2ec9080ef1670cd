import Foundation
import Testing

/// netconf on the real kernel: network namespaces with a veth pair as
/// dom0's eth0 and its peer, TAP devices as vifs (relayed to guest
/// namespaces where traffic is needed). State is read back through netlink
/// (`ip -j`), /proc/sys and `nft list`, never from netconf's own output.
@Suite(
    "host integration (network namespaces)", .serialized,
    .enabled(
        if: runningAsRoot,
        "host integration tests need root to create network namespaces; run `swift test` as root"))
struct HostIntegrationTests {
    /// dom0's eth0 as an installer would leave it: two IPv4 addresses, an
    /// IPv6 address, a default route for each family and a static route.
    func configureDom0(_ lab: NamespaceLab) throws {
        try lab.ip(lab.dom0, "addr", "add", "10.77.0.1/24", "brd", "+", "dev", "eth0")
        try lab.ip(lab.dom0, "addr", "add", "10.77.0.5/24", "dev", "eth0", "label", "eth0:1")
        try lab.ip(lab.dom0, "addr", "add", "2001:db8:77::1/64", "dev", "eth0", "nodad")
        try lab.ip(lab.dom0, "route", "add", "default", "via", "10.77.0.254")
        try lab.ip(lab.dom0, "route", "add", "10.99.0.0/16", "via", "10.77.0.2", "metric", "5")
        try lab.ip(lab.dom0, "-6", "route", "add", "default", "via", "2001:db8:77::fe")
        try lab.ip(lab.peer, "addr", "add", "10.77.0.2/24", "dev", "eth0")
        try lab.ip(lab.peer, "addr", "add", "2001:db8:77::2/64", "dev", "eth0", "nodad")
    }

    let bridgeConfig = NamespaceLab.shippedConfig("xend-config.sxp")
    let routeConfig = NamespaceLab.shippedConfig("xend-config-route.sxp")

    @Test func bridgeModeStartIdempotentVifAndStop() throws {
        try withLab { lab in
            try configureDom0(lab)
            // A TAP as netback creates it: present, down, in no bridge.
            try lab.ip(lab.dom0, "tuntap", "add", "vif2.0", "mode", "tap")
            #expect(try lab.ping(from: lab.peer, "10.77.0.1"), "peer reaches dom0 before start")
            let original = try lab.settledPicture(lab.dom0)

            let started = try lab.netconf(["start"], config: bridgeConfig)
            #expect(started.succeeded, "start: \(started.errors)")
            let running = try lab.settledPicture(lab.dom0)
            #expect(running.contains("link xenbr0 up"))
            #expect(running.contains("kind=bridge stp=0 forward_delay=0"))
            #expect(running.contains("link eth0 up mtu=1500"))
            #expect(running.matching("link eth0 ").first?.contains("master=xenbr0") == true)
            // The bridge took eth0's MAC address.
            let ethMAC = original.matching("link eth0 ").first?.split(separator: " ")
                .first { $0.hasPrefix("mac=") }
            let bridgeMAC = running.matching("link xenbr0 ").first?.split(separator: " ")
                .first { $0.hasPrefix("mac=") }
            #expect(ethMAC != nil && ethMAC == bridgeMAC)
            #expect(
                running.contains(
                    "addr xenbr0 inet 10.77.0.1/24 scope=global label=xenbr0 brd=10.77.0.255"))
            #expect(running.contains("addr xenbr0 inet 10.77.0.5/24 scope=global label=xenbr0:1"))
            #expect(running.contains("addr xenbr0 inet6 2001:db8:77::1/64"))
            #expect(running.matching("addr eth0 inet ").isEmpty)
            #expect(running.matching("addr eth0 inet6 2001:db8").isEmpty)
            #expect(
                running.contains("route -4 table=main unicast default via 10.77.0.254 dev xenbr0"))
            #expect(
                running.contains(
                    "route -4 table=main unicast 10.99.0.0/16 via 10.77.0.2 dev xenbr0"))
            #expect(
                running.contains(
                    "route -6 table=main unicast default via 2001:db8:77::fe dev xenbr0"))
            #expect(running.matching("dev eth0 proto=boot").isEmpty)
            #expect(lab.hasRecord("bridge-xenbr0"))
            #expect(
                try lab.ping(from: lab.peer, "10.77.0.1"), "peer reaches dom0 through the bridge")
            #expect(try lab.ping(from: lab.peer, "10.77.0.5"))
            #expect(try lab.ping(from: lab.peer, "2001:db8:77::1"))

            // A second start changes nothing.
            let record = try String(
                contentsOfFile: lab.stateDirectory + "/bridge-xenbr0.sxp", encoding: .utf8)
            let again = try lab.netconf(["start"], config: bridgeConfig)
            #expect(again.succeeded, "second start: \(again.errors)")
            #expect(again.output.contains("nothing to change"))
            let unchanged = try lab.settledPicture(lab.dom0)
            #expect(unchanged == running, "difference: \(difference(running, unchanged))")
            let recordAfter = try String(
                contentsOfFile: lab.stateDirectory + "/bridge-xenbr0.sxp", encoding: .utf8)
            #expect(recordAfter == record)

            let status = try lab.netconf(["status"], config: bridgeConfig)
            #expect(status.succeeded)
            #expect(status.output.contains("state: started"))

            // The vif TAP joins the bridge, and leaves it offline.
            let online = try lab.netconf(["vif", "online", "2", "0"], config: bridgeConfig)
            #expect(online.succeeded, "vif online: \(online.errors)")
            let joined = try lab.picture(lab.dom0)
            #expect(joined.matching("link vif2.0 ").first?.contains("up") == true)
            #expect(joined.matching("link vif2.0 ").first?.contains("master=xenbr0") == true)
            let offline = try lab.netconf(["vif", "offline", "2", "0"], config: bridgeConfig)
            #expect(offline.succeeded, "vif offline: \(offline.errors)")
            #expect(
                try lab.picture(lab.dom0).matching("link vif2.0 ").first?.contains("master=-")
                    == true)

            // With no options, `vif online` reads the vif's backend entries
            // from xenstore, as netback runs it: here a custom vif name.
            try lab.ip(lab.dom0, "tuntap", "add", "web3", "mode", "tap")
            try lab.xenstore.write("/local/domain/0/backend/vif/3/0/vifname", "web3")
            try lab.xenstore.write("/local/domain/0/backend/vif/3/0/script", "vif-bridge")
            let fromStore = try lab.netconf(["vif", "online", "3", "0"], config: bridgeConfig)
            #expect(fromStore.succeeded, "vif online from xenstore: \(fromStore.errors)")
            #expect(
                try lab.picture(lab.dom0).matching("link web3 ").first?.contains("master=xenbr0")
                    == true)
            try lab.ip(lab.dom0, "link", "delete", "web3")

            // Stop restores the original addresses and routes.
            let stopped = try lab.netconf(["stop"], config: bridgeConfig)
            #expect(stopped.succeeded, "stop: \(stopped.errors)")
            let restored = try lab.settledPicture(lab.dom0)
            #expect(restored == original, "difference: \(difference(original, restored))")
            #expect(!lab.hasRecord("bridge-xenbr0"))
            #expect(try lab.ping(from: lab.peer, "10.77.0.1"), "peer reaches dom0 after stop")
            let stoppedStatus = try lab.netconf(["status"], config: bridgeConfig)
            #expect(stoppedStatus.status == 3)
        }
    }

    @Test func bridgedGuestAndAntispoof() throws {
        try withLab { lab in
            try configureDom0(lab)
            let guest = try lab.addGuest(
                vif: "vif1.0", addresses: ["10.77.0.20/24", "10.77.0.99/24"])
            let plain = try lab.config(
                "plain.sxp", "(network-script network-bridge)\n(vif-script vif-bridge)\n")
            let guarded = try lab.config(
                "guarded.sxp",
                "(network-script 'network-bridge antispoof=yes')\n(vif-script vif-bridge)\n")
            let original = try lab.settledPicture(lab.dom0)
            #expect(try lab.netconf(["start"], config: plain).succeeded)

            // Without antispoof the guest may use any source address.
            let online = try lab.netconf(
                ["vif", "online", "1", "0", "--ip", "10.77.0.20"], config: plain)
            #expect(online.succeeded, "vif online: \(online.errors)")
            #expect(try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.20"))
            #expect(
                try lab.ping(from: guest, "10.77.0.1", source: "10.77.0.20"), "guest reaches dom0")
            #expect(
                try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.99"),
                "forged source passes without antispoof")
            #expect(try lab.netconf(["vif", "offline", "1", "0"], config: plain).succeeded)

            // With antispoof only the vif's own address gets through.
            let guardedOnline = try lab.netconf(
                ["vif", "online", "1", "0", "--ip", "10.77.0.20"], config: guarded)
            #expect(guardedOnline.succeeded, "vif online: \(guardedOnline.errors)")
            let rules = try lab.picture(lab.dom0)
            #expect(rules.contains("nft chain vif-vif1.0 {"))
            #expect(rules.contains("nft ip saddr != 10.77.0.20 drop"))
            #expect(
                try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.20"), "own address passes")
            #expect(
                !(try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.99")),
                "forged source is dropped")
            #expect(
                !(try lab.ping(from: guest, "10.77.0.1", source: "10.77.0.99")), "also towards dom0"
            )

            #expect(try lab.netconf(["vif", "offline", "1", "0"], config: guarded).succeeded)
            #expect(!(try lab.picture(lab.dom0).contains("vif-vif1.0")))
            let stopped = try lab.netconf(["stop"], config: guarded)
            #expect(stopped.succeeded, "stop: \(stopped.errors)")
            let restored = try lab.settledPicture(lab.dom0)
            #expect(restored == original, "difference: \(difference(original, restored))")
        }
    }

    @Test func routeModeHostRouteAndProxyARP() throws {
        try withLab { lab in
            try configureDom0(lab)
            let guest = try lab.addGuest(
                vif: "vif1.0", addresses: ["10.77.0.50/24", "10.77.0.51/24"], gateway: "10.77.0.1")
            let original = try lab.settledPicture(lab.dom0)

            let started = try lab.netconf(["start"], config: routeConfig)
            #expect(started.succeeded, "start: \(started.errors)")
            let running = try lab.picture(lab.dom0)
            #expect(running.contains("ip_forward 1"))
            #expect(running.contains("proxy_arp eth0 1"))
            let again = try lab.netconf(["start"], config: routeConfig)
            #expect(again.output.contains("nothing to change"))
            #expect(try lab.picture(lab.dom0) == running)

            let online = try lab.netconf(
                ["vif", "online", "1", "0", "--ip", "10.77.0.50"], config: routeConfig)
            #expect(online.succeeded, "vif online: \(online.errors)")
            let routed = try lab.picture(lab.dom0)
            #expect(routed.contains("addr vif1.0 inet 10.77.0.1/32 scope=global"))
            #expect(routed.contains("proxy_arp vif1.0 1"))
            #expect(
                routed.contains(
                    "route -4 table=main unicast 10.77.0.50 dev vif1.0 proto=static scope=link metric=0 src 10.77.0.1"
                ))

            // The peer reaches the guest's routed address: dom0 answers ARP
            // for it on eth0 and forwards to the vif.
            #expect(try lab.ping(from: lab.peer, "10.77.0.50"), "peer reaches the routed guest")
            let neighbours = try lab.ip(lab.peer, "neigh", "show", "10.77.0.50")
            let eth0MAC = try lab.ip(lab.dom0, "-br", "link", "show", "eth0").split(separator: " ")
                .filter { !$0.isEmpty }[2]
            #expect(
                neighbours.contains(String(eth0MAC)), "the peer learnt dom0's MAC for the guest")

            // Antispoof (on by default for network-route): a probe counts
            // what dom0 forwards from each source; the forged one never
            // gets past prerouting.
            for command in [
                "add table inet probe",
                "add chain inet probe counted { type filter hook forward priority 10 ; }",
                "add rule inet probe counted ip saddr 10.77.0.50 counter",
                "add rule inet probe counted ip saddr 10.77.0.51 counter",
            ] {
                #expect(try lab.exec(lab.dom0, ["nft", command]).succeeded, "\(command)")
            }
            #expect(try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.50"))
            _ = try lab.ping(from: guest, "10.77.0.2", source: "10.77.0.51")
            let counters = try lab.exec(lab.dom0, ["nft", "list", "table", "inet", "probe"]).output
            #expect(counters.contains("ip saddr 10.77.0.50 counter packets 3"), "\(counters)")
            #expect(
                counters.contains("ip saddr 10.77.0.51 counter packets 0 bytes 0"), "\(counters)")
            try lab.exec(lab.dom0, ["nft", "delete table inet probe"])

            let offline = try lab.netconf(
                ["vif", "offline", "1", "0", "--ip", "10.77.0.50"], config: routeConfig)
            #expect(offline.succeeded, "vif offline: \(offline.errors)")
            let gone = try lab.picture(lab.dom0)
            #expect(gone.matching("dev vif1.0").isEmpty)
            #expect(gone.matching("addr vif1.0 inet ").isEmpty)
            #expect(!gone.contains("vif-vif1.0"))

            let stopped = try lab.netconf(["stop"], config: routeConfig)
            #expect(stopped.succeeded, "stop: \(stopped.errors)")
            var restored = try lab.settledPicture(lab.dom0)
            // netback deletes the TAP after offline; until then it keeps proxy ARP.
            restored.lines.removeAll { $0 == "proxy_arp vif1.0 1" }
            var expected = original
            expected.lines.removeAll { $0 == "proxy_arp vif1.0 0" }
            #expect(restored == expected, "difference: \(difference(expected, restored))")
        }
    }

    @Test func natModeMasquerades() throws {
        try withLab { lab in
            try configureDom0(lab)
            let config = try lab.config(
                "nat.sxp", "(network-script network-nat)\n(vif-script vif-nat)\n")
            let original = try lab.settledPicture(lab.dom0)
            let started = try lab.netconf(["start"], config: config)
            #expect(started.succeeded, "start: \(started.errors)")
            let running = try lab.picture(lab.dom0)
            #expect(running.contains("ip_forward 1"))
            #expect(running.contains("nft oifname \"eth0\" masquerade"))
            #expect(try lab.netconf(["start"], config: config).output.contains("nothing to change"))
            #expect(try lab.netconf(["stop"], config: config).succeeded)
            #expect(try lab.settledPicture(lab.dom0) == original)
        }
    }

    @Test func missingNetdevLeavesEverythingAsItWas() throws {
        try withLab { lab in
            try configureDom0(lab)
            let config = try lab.config(
                "eth7.sxp", "(network-script 'network-bridge netdev=eth7')\n")
            let original = try lab.settledPicture(lab.dom0)
            let result = try lab.netconf(["start"], config: config)
            #expect(result.status == 1)
            #expect(result.errors.contains("eth7"))
            #expect(try lab.settledPicture(lab.dom0) == original)
            #expect(!lab.hasRecord("bridge-xenbr0"))
        }
    }

    /// The bridge exists and IPv4 has moved when moving the IPv6 address
    /// fails (IPv6 is disabled on new interfaces): everything is undone.
    @Test func failureAfterTheBridgeExistsRollsBack() throws {
        try withLab { lab in
            try configureDom0(lab)
            try lab.exec(lab.dom0, ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
            let original = try lab.settledPicture(lab.dom0)
            let result = try lab.netconf(["start"], config: bridgeConfig)
            #expect(result.status == 1)
            #expect(
                result.output.contains("created bridge xenbr0"),
                "failed too early: \(result.output)")
            #expect(result.output.contains("address 10.77.0.1/24 on xenbr0"))
            #expect(result.output.contains("undone"))
            let after = try lab.settledPicture(lab.dom0)
            #expect(after == original, "difference: \(difference(original, after))")
            #expect(!after.contains("xenbr0"))
            #expect(!lab.hasRecord("bridge-xenbr0"))
            #expect(try lab.ping(from: lab.peer, "10.77.0.1"))
        }
    }

    @Test func checkReportsErrorsWithTheirLocation() throws {
        let lab = try NamespaceLab()
        defer { lab.destroy() }
        let bad = try lab.config(
            "bad.sxp", "(dom0-cpus 1)\n(network-script\n  'network-bridge antispoof=maybe')\n")
        let result = try run([lab.binary, "netconf", "check", bad])
        #expect(result.status == 1)
        #expect(
            result.errors.contains(
                "\(bad):3:3: error: network-bridge: antispoof=maybe must be yes or no"))
        let good = try run([lab.binary, "netconf", "check", bridgeConfig])
        #expect(good.succeeded)
        #expect(
            good.output.contains(
                "(network-script \"network-bridge bridge=xenbr0 netdev=eth0 antispoof=no\")"))
    }
}

/// Lines only in one picture or the other, for failure messages.
func difference(_ a: NetworkPicture, _ b: NetworkPicture) -> String {
    let left = Set(a.lines)
    let right = Set(b.lines)
    return
        "before only: \(left.subtracting(right).sorted()); after only: \(right.subtracting(left).sorted())"
}
