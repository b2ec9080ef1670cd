import Testing

@testable import NetConf

@Suite("dom0 address from the kernel command line")
struct Dom0AddressTests {
    let bridgeScript = NetworkScript(
        mode: .bridge, scriptName: "network-bridge", bridge: "xenbr0", netdev: "eth0")

    @Test func defaultIsDHCPOnTheScriptNetdev() throws {
        let plan = try Dom0AddressPlan.parse(ip: nil, net: nil, bootif: nil)
        #expect(plan == Dom0AddressPlan(method: .dhcp, interface: .scriptNetdev))
    }

    @Test(arguments: ["dhcp", "on", "any", "bootp", ""])
    func dhcpWords(_ word: String) throws {
        #expect(try Dom0AddressPlan.parse(ip: word, net: nil, bootif: nil).method == .dhcp)
    }

    @Test(arguments: ["off", "none"])
    func offWords(_ word: String) throws {
        #expect(try Dom0AddressPlan.parse(ip: word, net: nil, bootif: nil).method == .off)
    }

    @Test func fullStaticForm() throws {
        let plan = try Dom0AddressPlan.parse(
            ip: "192.168.7.20:192.168.7.1:192.168.7.254:255.255.255.0:host7:eth1:off:192.168.7.53",
            net: nil, bootif: nil)
        guard case .fixed(let fixed) = plan.method else {
            Issue.record("not static: \(plan)")
            return
        }
        #expect(fixed.address == IPPrefix("192.168.7.20/24"))
        #expect(fixed.gateway == IPAddress("192.168.7.254"))
        #expect(fixed.nameServers == [IPAddress("192.168.7.53")!])
        #expect(fixed.hostname == "host7")
        #expect(plan.interface == .named("eth1"))
    }

    @Test func clientAddressWinsOverAutoconfAsInTheKernel() throws {
        let plan = try Dom0AddressPlan.parse(ip: "10.1.2.3::::::dhcp", net: nil, bootif: nil)
        guard case .fixed(let fixed) = plan.method else {
            Issue.record("not static: \(plan)")
            return
        }
        // No netmask: the classful default (10/8).
        #expect(fixed.address == IPPrefix("10.1.2.3/8"))
        #expect(fixed.gateway == nil)
    }

    @Test func noClientMeansDHCPOnTheDevice() throws {
        let plan = try Dom0AddressPlan.parse(ip: ":::::eth2:dhcp", net: nil, bootif: nil)
        #expect(plan == Dom0AddressPlan(method: .dhcp, interface: .named("eth2")))
        let off = try Dom0AddressPlan.parse(ip: ":::::eth2:off", net: nil, bootif: nil)
        #expect(off.method == .off)
    }

    @Test(arguments: [
        "10.0.0.300::::::off", "10.0.0.1:::255.0.255.0:::off", "10.0.0.1:::::eth/0:off",
        "10.0.0.1::gw::::off", "10.0.0.1::::::sometimes", "garbage", "2001:db8::1::::::off",
    ])
    func malformedIsAProblem(_ text: String) {
        #expect(throws: Dom0AddressPlan.Problem.self) {
            try Dom0AddressPlan.parse(ip: text, net: nil, bootif: nil)
        }
    }

    @Test func proxenosNetNamesTheInterface() throws {
        let plan = try Dom0AddressPlan.parse(ip: ":::::eth2:dhcp", net: "eth3", bootif: nil)
        #expect(plan.interface == .named("eth3"))
        #expect(throws: Dom0AddressPlan.Problem.self) {
            try Dom0AddressPlan.parse(ip: nil, net: "../x", bootif: nil)
        }
    }

    @Test func bootifPicksTheNICNotTheBridge() throws {
        let plan = try Dom0AddressPlan.parse(ip: nil, net: nil, bootif: "01-52-54-00-12-34-56")
        let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
        #expect(plan.interface == .mac(mac))
        let links = [
            Link(index: 1, name: "lo"), Link(index: 2, name: "eth1", mac: [2, 0, 0, 0, 0, 1]),
            Link(index: 3, name: "eth0", mac: mac),
            Link(index: 4, name: "xenbr0", kind: "bridge", mac: mac),
        ]
        // eth0 is the bridge's netdev: the bridge carries the address.
        #expect(try plan.resolveInterface(links: links, script: bridgeScript).get() == "xenbr0")
        let route = NetworkScript(mode: .route, scriptName: "network-route", netdev: "eth0")
        #expect(try plan.resolveInterface(links: links, script: route).get() == "eth0")
        #expect(throws: Dom0AddressPlan.Problem.self) {
            try Dom0AddressPlan.parse(ip: nil, net: nil, bootif: "01-52-54-00-12-34")
        }
    }

    @Test func anotherNICThanTheBridgesStaysItself() throws {
        let links = [
            Link(index: 2, name: "eth0"), Link(index: 3, name: "eth1"),
            Link(index: 4, name: "xenbr0", kind: "bridge"),
        ]
        let plan = Dom0AddressPlan(method: .dhcp, interface: .named("eth1"))
        #expect(try plan.resolveInterface(links: links, script: bridgeScript).get() == "eth1")
        let missing = Dom0AddressPlan(method: .dhcp, interface: .named("eth9"))
        #expect(throws: Dom0AddressPlan.Problem.self) {
            try missing.resolveInterface(links: links, script: bridgeScript).get()
        }
    }

    @Test(arguments: [
        ("255.255.255.0", 24), ("255.255.0.0", 16), ("255.255.255.255", 32), ("0.0.0.0", 0),
        ("255.255.255.128", 25),
    ])
    func masks(_ text: String, _ length: Int) {
        #expect(Dom0AddressPlan.prefixLength(ofMask: text) == length)
    }
}
