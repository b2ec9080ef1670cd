import Testing

@testable import Init

@Suite struct KernelCommandLineTests {
    @Test func splitsOnWhitespaceAndKeepsQuotedSpaces() {
        let line = KernelCommandLine("console=hvc0  quiet\tfoo=\"a b\" \"x y\"=z\n")
        #expect(line.words == ["console=hvc0", "quiet", "foo=a b", "x y=z"])
    }

    @Test func emptyQuotesMakeAnEmptyWord() {
        #expect(KernelCommandLine("a \"\" b").words == ["a", "", "b"])
        #expect(KernelCommandLine("   ").words == [])
    }

    @Test func valueLastOneWinsAndBareKeyIsEmpty() {
        let line = KernelCommandLine("root=/dev/a quiet root=/dev/b")
        #expect(line.value("root") == "/dev/b")
        #expect(line.value("quiet") == "")
        #expect(line.value("quie") == nil)
        #expect(line.value("missing") == nil)
    }

    @Test func proxenosKeysAreCollected() {
        let line = KernelCommandLine(
            "console=hvc0 proxenos.hostname=alpha proxenos.debug proxenos.disable=a,b proxenos. x")
        #expect(line.proxenosKeys == ["hostname": "alpha", "debug": "", "disable": "a,b"])
    }

    @Test func valuesMayContainEqualsSigns() {
        let line = KernelCommandLine("proxenos.modules=a=b")
        #expect(line.proxenosKeys == ["modules": "a=b"])
    }
}

@Suite struct InitConfigurationTests {
    @Test func defaults() {
        let config = InitConfiguration(commandLine: KernelCommandLine("console=hvc0 quiet"))
        #expect(config.hostname == nil)
        #expect(config.console == nil)
        #expect(config.adminShell)
        #expect(config.disabledServices.isEmpty)
        #expect(config.extraModules.isEmpty)
        #expect(!config.debug)
        #expect(config.warnings.isEmpty)
    }

    @Test func readsEveryKey() {
        let config = InitConfiguration(
            commandLine: KernelCommandLine(
                "proxenos.hostname=xen-7.example proxenos.console=/dev/ttyS0 proxenos.shell=0 "
                    + "proxenos.disable=xenconsoled,,xend proxenos.modules=dummy,veth "
                    + "proxenos.debug"))
        #expect(config.hostname == "xen-7.example")
        #expect(config.console == "ttyS0")
        #expect(!config.adminShell)
        #expect(config.disabledServices == ["xenconsoled", "xend"])
        #expect(config.extraModules == ["dummy", "veth"])
        #expect(config.debug)
        #expect(config.warnings.isEmpty)
    }

    @Test func badValuesWarnAndKeepDefaults() {
        let config = InitConfiguration(
            commandLine: KernelCommandLine(
                "proxenos.hostname=-bad- proxenos.console=../sda proxenos.shell=maybe "
                    + "proxenos.colour=blue"))
        #expect(config.hostname == nil)
        #expect(config.console == nil)
        #expect(config.adminShell)
        #expect(config.warnings.count == 4)
        #expect(config.warnings.contains { $0.contains("proxenos.colour") })
        #expect(config.warnings.contains { $0.contains("-bad-") })
    }

    @Test(arguments: [
        ("proxenos", true), ("a.b-c.d9", true), ("", false), ("-a", false), ("a-", false),
        ("a..b", false), ("a_b", false), (String(repeating: "x", count: 64), false),
        (String(repeating: "x", count: 63), true),
    ])
    func hostnames(name: String, valid: Bool) {
        #expect(InitConfiguration.isValidHostname(name) == valid)
    }
}
