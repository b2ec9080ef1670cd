import Testing

@testable import Init

@Suite struct ModuleIndexTests {
    // A slice of a real depmod output: bridge needs stp and llc, stp needs llc.
    let index = ModuleIndex(
        dep: """
            kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
            kernel/net/802/stp.ko: kernel/net/llc/llc.ko
            kernel/net/llc/llc.ko:
            kernel/drivers/xen/xen-gntdev.ko:
            kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
            kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko
            kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
            kernel/net/core/failover.ko:
            """,
        alias: """
            # Aliases extracted from modules themselves.
            alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000
            alias pci:v00008086d0000100Fsv*sd*bc*sc*i* e1000
            alias virtio:d00000001v* virtio_net
            alias net-pf-7 bridge
            """,
        builtin: "kernel/drivers/xen/xenfs.ko\n")

    @Test func dependenciesLoadFirstAndOnce() {
        let (paths, unknown) = index.loadOrder(for: ["bridge", "stp", "xen-gntdev"])
        #expect(
            paths == [
                "kernel/net/llc/llc.ko", "kernel/net/802/stp.ko", "kernel/net/bridge/bridge.ko",
                "kernel/drivers/xen/xen-gntdev.ko",
            ])
        #expect(unknown.isEmpty)
    }

    @Test func xenDeviceModulesSplitOffInOrder() {
        let (paths, _) = index.loadOrder(for: ["bridge", "xen-gntdev", "e1000"])
        let (xen, rest) = ModuleIndex.splitXenFirst(paths)
        #expect(xen == ["kernel/drivers/xen/xen-gntdev.ko"])
        #expect(
            rest == [
                "kernel/net/llc/llc.ko", "kernel/net/802/stp.ko", "kernel/net/bridge/bridge.ko",
                "kernel/drivers/net/ethernet/intel/e1000/e1000.ko",
            ])
    }

    @Test func builtinModulesAreSkippedAndUnknownOnesReported() {
        let (paths, unknown) = index.loadOrder(for: ["xenfs", "nonexistent", "virtio-net"])
        #expect(
            paths == [
                "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/net/virtio_net.ko",
            ])
        #expect(unknown == ["nonexistent"])
    }

    @Test func namesAreNormalised() {
        #expect(ModuleIndex.name(ofPath: "kernel/drivers/xen/xen-gntdev.ko") == "xen_gntdev")
        #expect(ModuleIndex.name(ofPath: "a/b/c.ko.xz") == "c")
        #expect(ModuleIndex.name(ofPath: "plain") == "plain")
    }

    @Test func modaliasesPickTheirDrivers() {
        #expect(
            index.modules(forModalias: "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00")
                == ["e1000"])
        #expect(index.modules(forModalias: "virtio:d00000001v00001AF4") == ["virtio_net"])
        #expect(index.modules(forModalias: "pci:v00001234d00001111sv0bc03sc00i00").isEmpty)
    }

    @Test func aMalformedTableIsIgnoredNotFatal() {
        let broken = ModuleIndex(
            dep: "no colon here\n:\n", alias: "alias onlytwo\nalias", builtin: "")
        #expect(broken.loadOrder(for: ["x"]).unknown == ["x"])
    }

    @Test(arguments: [
        ("a*c", "abc", true), ("a*c", "ac", true), ("a*c", "abd", false), ("a?c", "abc", true),
        ("a?c", "ac", false), ("[ab]x", "bx", true), ("[!ab]x", "bx", false),
        ("[a-c]", "b", true), ("[a-c]", "d", false), ("*", "", true), ("", "", true),
        ("", "a", false), ("a[", "a[", true), ("pci:v*d*", "pci:v1d2", true),
        ("[]]", "]", true),
    ])
    func glob(pattern: String, text: String, matches: Bool) {
        #expect(Glob.matches(pattern, text) == matches)
    }
}
