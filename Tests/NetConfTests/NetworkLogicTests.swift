import Testing

@testable import NetConf

private func prefix(_ text: String) -> IPPrefix {
    IPPrefix(text)!
}

private func ip(_ text: String) -> IPAddress {
    IPAddress(text)!
}

/// dom0 as it boots: eth0 with two IPv4 addresses, a global IPv6 address,
/// a link-local one, a default route each for IPv4 and IPv6 and a static
/// route; a vif TAP, down.
private func dom0() -> FakeNetwork {
    let fake = FakeNetwork()
    fake.addLink("lo")
    let eth0 = fake.addLink("eth0", mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56])
    fake.addLink("vif1.0", up: false)
    let setup: () throws(NetConfError) -> Void = {
        try fake.addAddress(
            InterfaceAddress(interface: eth0.index, local: prefix("10.0.0.1/24"), label: "eth0"))
        try fake.addAddress(
            InterfaceAddress(
                interface: eth0.index, local: prefix("10.0.0.5/24"), label: "eth0:1"))
        try fake.addAddress(
            InterfaceAddress(interface: eth0.index, local: prefix("2001:db8::1/64")))
        try fake.addAddress(
            InterfaceAddress(
                interface: eth0.index, local: prefix("fe80::1/64"),
                scope: InterfaceAddress.scopeLink))
        try fake.addRoute(
            Route(
                destination: prefix("0.0.0.0/0"),
                nexthops: [Nexthop(interface: eth0.index, gateway: ip("10.0.0.254"))]))
        try fake.addRoute(
            Route(
                destination: prefix("10.99.0.0/16"), protocolID: Route.protocolStatic, priority: 5,
                nexthops: [Nexthop(interface: eth0.index, gateway: ip("10.0.0.2"))]))
        try fake.addRoute(
            Route(
                destination: prefix("::/0"), priority: 1024,
                nexthops: [Nexthop(interface: eth0.index, gateway: ip("2001:db8::ff"))]))
    }
    do {
        try setup()
    } catch {
        Issue.record("fixture: \(error)")
    }
    fake.changes = 0
    return fake
}

private let bridgeScript = NetworkScript(mode: .bridge, scriptName: "network-bridge")

@Suite("network-bridge logic")
struct NetworkBridgeLogicTests {
    @Test func startMovesAddressesAndRoutes() throws {
        let fake = dom0()
        try NetworkBridge.start(bridgeScript, on: fake.host)
        let eth0 = fake.index("eth0")
        let bridge = try #require(fake.linkList.first { $0.name == "xenbr0" })
        #expect(bridge.isBridge && bridge.isUp)
        #expect(bridge.mac == [0x52, 0x54, 0, 0x12, 0x34, 0x56])
        #expect(fake.settings[bridge.index] == BridgeSettings(stp: false, forwardDelay: 0))
        #expect(fake.linkList.first { $0.name == "eth0" }?.master == bridge.index)
        let onBridge = Set(
            fake.addressSet.filter { $0.interface == bridge.index }.map(\.local.cidr))
        #expect(onBridge == ["10.0.0.1/24", "10.0.0.5/24", "2001:db8::1/64"])
        #expect(fake.addressSet.first { $0.local.cidr == "10.0.0.5/24" }?.label == "xenbr0:1")
        // The link-local address stays; the kernel gives the bridge its own.
        #expect(fake.addressSet.filter { $0.interface == eth0 }.map(\.local.cidr) == ["fe80::1/64"])
        let viaBridge = fake.routeSet.filter {
            $0.uses(bridge.index) && $0.protocolID != Route.protocolKernel
        }
        #expect(Set(viaBridge.map(\.destination.cidr)) == ["0.0.0.0/0", "10.99.0.0/16", "::/0"])
        #expect(!fake.routeSet.contains { $0.uses(eth0) && $0.protocolID != Route.protocolKernel })
        #expect(fake.records["bridge-xenbr0"] != nil)
    }

    @Test func secondStartChangesNothing() throws {
        let fake = dom0()
        try NetworkBridge.start(bridgeScript, on: fake.host)
        let after = fake.snapshot
        let changes = fake.changes
        let host = fake.host
        try NetworkBridge.start(bridgeScript, on: host)
        #expect(fake.changes == changes)
        #expect(host.actions.isEmpty)
        #expect(fake.snapshot == after)
    }

    @Test func stopRestoresTheNetdev() throws {
        let fake = dom0()
        let before = fake.snapshot
        try NetworkBridge.start(bridgeScript, on: fake.host)
        try NetworkBridge.stop(bridgeScript, on: fake.host)
        #expect(fake.snapshot == before)
        // A second stop has no record and does nothing.
        let host = fake.host
        try NetworkBridge.stop(bridgeScript, on: host)
        #expect(fake.snapshot == before)
    }

    /// A failure at any one step of start leaves the network as it was.
    @Test func startRollsBackAtEveryStep() throws {
        let probe = dom0()
        try NetworkBridge.start(bridgeScript, on: probe.host)
        let steps = probe.changes
        #expect(steps >= 10)
        for step in 1...steps {
            let fake = dom0()
            let before = fake.snapshot
            fake.failAt = step
            #expect(throws: NetConfError.self, "step \(step)") {
                try NetworkBridge.start(bridgeScript, on: fake.host)
            }
            #expect(fake.snapshot == before, "failure at step \(step) was not rolled back")
        }
    }

    /// A failure at any one step of stop leaves the bridge set-up in place.
    @Test func stopRollsBackAtEveryStep() throws {
        let probe = dom0()
        try NetworkBridge.start(bridgeScript, on: probe.host)
        let started = probe.changes
        try NetworkBridge.stop(bridgeScript, on: probe.host)
        let steps = probe.changes - started
        for step in 1...steps {
            let fake = dom0()
            try NetworkBridge.start(bridgeScript, on: fake.host)
            let running = fake.snapshot
            fake.failAt = fake.changes + step
            #expect(throws: NetConfError.self, "step \(step)") {
                try NetworkBridge.stop(bridgeScript, on: fake.host)
            }
            #expect(fake.snapshot == running, "failure at stop step \(step) was not rolled back")
        }
    }

    @Test func missingNetdevChangesNothing() {
        let fake = dom0()
        let before = fake.snapshot
        var script = bridgeScript
        script.netdev = "eth9"
        #expect {
            try NetworkBridge.start(script, on: fake.host)
        } throws: { error in
            guard case .noSuchInterface("eth9") = error as? NetConfError else { return false }
            return true
        }
        #expect(fake.snapshot == before)
        #expect(fake.changes == 0)
    }

    @Test func unsuitableNetdevsAreRefusedBeforeAnyChange() {
        let fake = dom0()
        fake.addLink("br-other", kind: "bridge")
        var loop = fake.linkList[0]
        loop.flags |= Link.flagLoopback
        fake.linkList[0] = loop
        for netdev in ["br-other", "lo"] {
            var script = bridgeScript
            script.netdev = netdev
            #expect(throws: NetConfError.self) { try NetworkBridge.start(script, on: fake.host) }
        }
        fake.addLink("notabridge")
        var script = bridgeScript
        script.bridge = "notabridge"
        #expect(throws: NetConfError.self) { try NetworkBridge.start(script, on: fake.host) }
        #expect(fake.changes == 0)
    }

    @Test func existingBridgeKeepsItsSettingsAfterStop() throws {
        let fake = dom0()
        let bridge = fake.addLink("xenbr0", kind: "bridge", up: false)
        fake.settings[bridge.index] = BridgeSettings(stp: true, forwardDelay: 1500)
        let before = fake.snapshot
        try NetworkBridge.start(bridgeScript, on: fake.host)
        #expect(fake.settings[bridge.index] == BridgeSettings(stp: false, forwardDelay: 0))
        #expect(fake.linkList.first { $0.name == "xenbr0" }?.isUp == true)
        try NetworkBridge.stop(bridgeScript, on: fake.host)
        #expect(fake.snapshot == before)
    }

    @Test func existingBridgeRollsBackAtEveryStep() throws {
        func prepared() -> FakeNetwork {
            let fake = dom0()
            let bridge = fake.addLink("xenbr0", kind: "bridge", up: false)
            fake.settings[bridge.index] = BridgeSettings(stp: true, forwardDelay: 1500)
            return fake
        }
        let probe = prepared()
        try NetworkBridge.start(bridgeScript, on: probe.host)
        for step in 1...probe.changes {
            let fake = prepared()
            let before = fake.snapshot
            fake.failAt = step
            #expect(throws: NetConfError.self) {
                try NetworkBridge.start(bridgeScript, on: fake.host)
            }
            #expect(fake.snapshot == before, "step \(step)")
        }
    }

    @Test func antispoofTableComesAndGoes() throws {
        let fake = dom0()
        var script = bridgeScript
        script.antispoof = true
        try NetworkBridge.start(script, on: fake.host)
        #expect(fake.tables["bridge proxenos"]?.contains("iifname vmap @vifs") == true)
        let changes = fake.changes
        try NetworkBridge.start(script, on: fake.host)
        #expect(fake.changes == changes)
        try NetworkBridge.stop(script, on: fake.host)
        #expect(fake.tables["bridge proxenos"] == nil)
    }

    @Test func damagedRecordIsReported() {
        let fake = dom0()
        fake.records["bridge-xenbr0"] = "(netconf-bridge (bridge \"xenbr0\")"
        #expect {
            try NetworkBridge.stop(bridgeScript, on: fake.host)
        } throws: { error in
            guard case .badRecord = error as? NetConfError else { return false }
            return true
        }
    }
}

@Suite("network-route and network-nat logic")
struct NetworkRoutingLogicTests {
    let route = NetworkScript(mode: .route, scriptName: "network-route", antispoof: true)
    let nat = NetworkScript(mode: .nat, scriptName: "network-nat")

    @Test func routeStartStop() throws {
        let fake = dom0()
        let before = fake.snapshot
        try NetworkRouting.start(route, on: fake.host)
        #expect(fake.sysctls["net/ipv4/ip_forward"] == "1")
        #expect(fake.linkList.first { $0.name == "eth0" }?.proxyARP == true)
        #expect(fake.tables["inet proxenos"] != nil)
        let changes = fake.changes
        try NetworkRouting.start(route, on: fake.host)
        #expect(fake.changes == changes)
        try NetworkRouting.stop(route, on: fake.host)
        #expect(fake.snapshot == before)
    }

    @Test func natStartStop() throws {
        let fake = dom0()
        let before = fake.snapshot
        try NetworkRouting.start(nat, on: fake.host)
        #expect(fake.sysctls["net/ipv4/ip_forward"] == "1")
        #expect(fake.tables["ip proxenos_nat"]?.contains("oifname \"eth0\" masquerade") == true)
        #expect(fake.linkList.first { $0.name == "eth0" }?.proxyARP == false)
        try NetworkRouting.stop(nat, on: fake.host)
        #expect(fake.snapshot == before)
    }

    @Test(arguments: [true, false])
    func rollsBackAtEveryStep(natMode: Bool) throws {
        let script = natMode ? nat : route
        let probe = dom0()
        try NetworkRouting.start(script, on: probe.host)
        for step in 1...probe.changes {
            let fake = dom0()
            let before = fake.snapshot
            fake.failAt = step
            #expect(throws: NetConfError.self) { try NetworkRouting.start(script, on: fake.host) }
            #expect(fake.snapshot == before, "step \(step)")
        }
    }

    @Test func forwardingAlreadyOnStaysOn() throws {
        let fake = dom0()
        fake.sysctls["net/ipv4/ip_forward"] = "1"
        try NetworkRouting.start(route, on: fake.host)
        try NetworkRouting.stop(route, on: fake.host)
        #expect(fake.sysctls["net/ipv4/ip_forward"] == "1")
    }
}

@Suite("vif-bridge and vif-route logic")
struct VifLogicTests {
    func bridged(_ fake: FakeNetwork, antispoof: Bool = false) throws -> VifSpec {
        var script = bridgeScript
        script.antispoof = antispoof
        try NetworkBridge.start(script, on: fake.host)
        return VifSpec(
            domid: 1, devid: 0, mode: .bridge, name: "vif1.0", bridge: "xenbr0",
            addresses: [prefix("10.0.0.20")], antispoof: antispoof)
    }

    @Test func bridgeOnlineOffline() throws {
        let fake = dom0()
        let spec = try bridged(fake)
        let before = fake.snapshot
        try VifScripts.online(spec, on: fake.host)
        let vif = try #require(fake.linkList.first { $0.name == "vif1.0" })
        #expect(vif.master == fake.index("xenbr0"))
        #expect(vif.isUp)
        let changes = fake.changes
        try VifScripts.online(spec, on: fake.host)
        #expect(fake.changes == changes)
        try VifScripts.offline(spec, on: fake.host)
        #expect(fake.snapshot == before)
    }

    @Test func bridgeMissingIsAClearError() {
        let fake = dom0()
        let spec = VifSpec(domid: 1, devid: 0, mode: .bridge, name: "vif1.0", bridge: "xenbr7")
        #expect {
            try VifScripts.online(spec, on: fake.host)
        } throws: { error in
            "\(error)".contains("xenbr7") && "\(error)".contains("netconf start")
        }
    }

    @Test func antispoofRulesFollowTheVif() throws {
        let fake = dom0()
        let spec = try bridged(fake, antispoof: true)
        try VifScripts.online(spec, on: fake.host)
        let table = try #require(fake.tables["bridge proxenos"])
        #expect(table.contains("ip saddr != { 10.0.0.20 } drop"))
        #expect(table.contains("\"vif1.0\" : jump vif-vif1.0"))
        try VifScripts.offline(spec, on: fake.host)
        #expect(
            fake.tables["bridge proxenos"]?.contains("delete chain bridge proxenos vif-vif1.0")
                == true)
    }

    @Test func routeOnlineOffline() throws {
        let fake = dom0()
        let spec = VifSpec(
            domid: 1, devid: 0, mode: .route, name: "vif1.0",
            addresses: [prefix("10.0.0.50"), prefix("10.1.0.0/24")], netdev: "eth0")
        let before = fake.snapshot
        try VifScripts.online(spec, on: fake.host)
        let vif = fake.index("vif1.0")
        #expect(fake.addressSet.contains { $0.interface == vif && $0.local.cidr == "10.0.0.1/32" })
        #expect(fake.linkList.first { $0.index == vif }?.proxyARP == true)
        let routes = fake.routeSet.filter { $0.uses(vif) }
        #expect(Set(routes.map(\.destination.cidr)) == ["10.0.0.50/32", "10.1.0.0/24"])
        #expect(routes.allSatisfy { $0.preferredSource == ip("10.0.0.1") })
        let changes = fake.changes
        try VifScripts.online(spec, on: fake.host)
        #expect(fake.changes == changes)
        try VifScripts.offline(spec, on: fake.host)
        // Offline leaves proxy ARP on the vif: netback deletes the TAP next.
        var after = fake.snapshot
        if let position = after.links.firstIndex(where: { $0.index == vif }) {
            after.links[position].proxyARP = false
        }
        #expect(after == before)
    }

    @Test(arguments: [VifMode.bridge, .route])
    func onlineRollsBackAtEveryStep(mode: VifMode) throws {
        func prepared() throws -> (FakeNetwork, VifSpec) {
            let fake = dom0()
            var spec = VifSpec(
                domid: 1, devid: 0, mode: mode, name: "vif1.0",
                addresses: [prefix("10.0.0.50")], antispoof: true)
            if mode == .bridge { spec = try bridged(fake, antispoof: true) }
            fake.changes = 0
            return (fake, spec)
        }
        let (probe, probeSpec) = try prepared()
        try VifScripts.online(probeSpec, on: probe.host)
        for step in 1...probe.changes {
            let (fake, spec) = try prepared()
            let before = fake.snapshot
            fake.failAt = step
            #expect(throws: NetConfError.self) { try VifScripts.online(spec, on: fake.host) }
            var after = fake.snapshot
            // An undone antispoof leaves the (idempotent) base in place.
            after.tables = before.tables
            #expect(after == before, "step \(step)")
        }
    }

    @Test func routeNeedsAnIPv4AddressOnTheNetdev() {
        let fake = dom0()
        let spec = VifSpec(domid: 1, devid: 0, mode: .route, name: "vif1.0", netdev: "vif1.0")
        #expect(throws: NetConfError.self) { try VifScripts.online(spec, on: fake.host) }
    }

    @Test func natUsesTheRouterAddress() throws {
        let fake = dom0()
        let vif = fake.addLink("vif3.0", up: false).index
        let config = try XendConfig.parse(
            "(network-script network-nat)\n(vif-script vif-nat)", file: "c")
        let spec = try VifSpec.resolve(
            domid: 3, devid: 0, entries: VifBackendEntries(), config: config)
        // vif-nat's default: 10.(domid / 256).(domid % 256).(devid + 1)/16.
        #expect(spec.addresses == [prefix("10.0.3.1/16")])
        try VifScripts.online(spec, on: fake.host)
        #expect(
            fake.addressSet.contains { $0.interface == vif && $0.local.cidr == "10.0.3.128/32" })
        let routes = fake.routeSet.filter { $0.uses(vif) }
        #expect(routes.map(\.destination.cidr) == ["10.0.3.1/32"])
        #expect(routes.first?.preferredSource == ip("10.0.3.128"))
    }

    @Test func resolveFromEntriesAndConfig() throws {
        let config = try XendConfig.parse(
            "(network-script 'network-bridge bridge=xenbr1 antispoof=yes')", file: "c")
        let plain = try VifSpec.resolve(
            domid: 4, devid: 2, entries: VifBackendEntries(), config: config)
        #expect(plain.name == "vif4.2")
        #expect(plain.bridge == "xenbr1")
        #expect(plain.mode == .bridge)
        #expect(plain.antispoof)
        let custom = try VifSpec.resolve(
            domid: 4, devid: 2,
            entries: VifBackendEntries(
                bridge: "xenbr0", ip: "10.0.0.7 2001:db8::7", vifname: "guest0",
                mac: "00:16:3e:00:00:01", script: "/etc/xen/scripts/vif-route"),
            config: config)
        #expect(custom.name == "guest0")
        #expect(custom.bridge == "xenbr0")
        #expect(custom.mode == .route)
        #expect(custom.addresses == [prefix("10.0.0.7"), prefix("2001:db8::7")])
        #expect(custom.mac == "00:16:3e:00:00:01")
        #expect(throws: NetConfError.self) {
            try VifSpec.resolve(
                domid: 1, devid: 0, entries: VifBackendEntries(ip: "10.0.0.300"), config: config)
        }
        #expect(throws: NetConfError.self) {
            try VifSpec.resolve(
                domid: 1, devid: 0, entries: VifBackendEntries(vifname: "bad name"), config: config)
        }
        #expect(throws: NetConfError.self) {
            try VifSpec.resolve(
                domid: 1, devid: 0, entries: VifBackendEntries(script: "vif-frob"), config: config)
        }
    }

    @Test func backendEntriesReadTheBackendDirectory() throws {
        var asked: [String] = []
        let entries = try VifBackendEntries.read(domid: 5, devid: 1) { path throws(NetConfError) in
            asked.append(path)
            return path.hasSuffix("/ip") ? "10.0.0.9" : nil
        }
        #expect(asked.first == "/local/domain/0/backend/vif/5/1/bridge")
        #expect(asked.count == VifBackendEntries.keys.count)
        #expect(entries.ip == "10.0.0.9")
        #expect(entries.bridge == nil)
    }
}
