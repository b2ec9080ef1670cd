import Foundation
import NetConf
import NetnsTesting
import TapDevice
import Testing
import VifBackend
import XenBus

@Suite("HostVifNetwork: the TAP created, configured and online (host integration)")
struct HostVifNetworkTests {
    @Test(
        "bridge mode: the TAP gets dom0's MAC, the bridge's MTU, joins it and is up; detach removes it",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func bridge() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        try namespace.ip("link", "add", "xenbr0", "type", "bridge")
        try namespace.ip("link", "set", "xenbr0", "mtu", "1400")
        try namespace.ip("link", "set", "xenbr0", "up")
        let directory = NSTemporaryDirectory() + "pxnb-host-\(getpid())"
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = directory + "/xend-config.sxp"
        try "(network-script network-bridge)\n(vif-script vif-bridge)\n".write(
            toFile: config, atomically: true, encoding: .utf8)
        let network = HostVifNetwork(configPath: config, stateDirectory: directory + "/state")
        let plan = VifPlan(
            key: BackendDeviceKey(frontendDomain: DomainID(3), deviceID: 0), name: "vif3.0",
            queueCount: 1, offloads: [.checksum], mtu: 9000,
            entries: VifBackendEntries(bridge: "xenbr0", mac: "00:16:3e:00:00:03"))
        let attachment = try namespace.inside { try network.attach(plan) }
        let link = try namespace.ip("-d", "link", "show", "vif3.0")
        #expect(link.contains("master xenbr0"))
        #expect(link.contains("mtu 1400"), "the bridge's MTU, so the TAP cannot lower it")
        #expect(link.contains("fe:ff:ff:ff:ff:ff"))
        #expect(link.contains("state UP") || link.contains(",UP"))
        try namespace.inside { attachment.detach() }
        #expect(try namespace.exec(["ip", "link", "show", "vif3.0"]).status != 0)
    }

    @Test(
        "a bridge that does not exist: attach fails with the reason and leaves no TAP",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func missingBridge() throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        let network = HostVifNetwork(
            configPath: "/nonexistent/xend-config.sxp", stateDirectory: NSTemporaryDirectory())
        let plan = VifPlan(
            key: BackendDeviceKey(frontendDomain: DomainID(4), deviceID: 0), name: "vif4.0",
            queueCount: 1, offloads: [], mtu: 1500, entries: VifBackendEntries(bridge: "nobr0"))
        #expect {
            try namespace.inside { _ = try network.attach(plan) }
        } throws: { error in
            String(describing: error).contains("nobr0")
        }
        #expect(try namespace.exec(["ip", "link", "show", "vif4.0"]).status != 0)
    }
}
