import Foundation
import Testing

@testable import NetConf

private func config(_ text: String) throws -> XendConfig {
    try XendConfig.parse(text, file: "x.sxp")
}

private func errors(_ text: String) -> [ConfigDiagnostic] {
    do {
        _ = try XendConfig.parse(text, file: "x.sxp")
        return []
    } catch {
        return error.diagnostics.filter { $0.severity == .error }
    }
}

@Suite("xend-config.sxp")
struct XendConfigTests {
    @Test func defaultsWithoutAFile() throws {
        let empty = try config("")
        #expect(empty.network.mode == .none)
        #expect(empty.vif.mode == .bridge)
        #expect(empty.dom0MinMem == 0)
        #expect(empty.consoleLimit == 1024)
        #expect(empty.enableDump == false)
        #expect(empty.vncListen == "127.0.0.1")
        #expect(empty.relocationPort == 8002)
        #expect(empty.bool("enable-dom0-ballooning") == false)
        #expect(empty.warnings.isEmpty)
    }

    @Test func bridgeDefaults() throws {
        let parsed = try config("(network-script network-bridge)\n(vif-script vif-bridge)")
        #expect(parsed.network.mode == .bridge)
        #expect(parsed.network.bridge == "xenbr0")
        #expect(parsed.network.netdev == "eth0")
        #expect(parsed.network.antispoof == false)
        #expect(parsed.vif.mode == .bridge)
    }

    @Test func bridgeArguments() throws {
        let parsed = try config(
            "(network-script 'network-bridge netdev=eth1 bridge=xenbr1 antispoof=yes')")
        #expect(parsed.network.mode == .bridge)
        #expect(parsed.network.bridge == "xenbr1")
        #expect(parsed.network.netdev == "eth1")
        #expect(parsed.network.antispoof)
        #expect(
            parsed.network.effectiveLine == "network-bridge bridge=xenbr1 netdev=eth1 antispoof=yes"
        )
    }

    @Test func vifnumChoosesBridgeAndNetdev() throws {
        let parsed = try config("(network-script \"network-bridge vifnum=2\")")
        #expect(parsed.network.bridge == "xenbr2")
        #expect(parsed.network.netdev == "eth2")
    }

    @Test func scriptPathIsReducedToItsName() throws {
        let parsed = try config("(network-script /etc/xen/scripts/network-route)")
        #expect(parsed.network.mode == .route)
        // network-route documents antispoof as on by default.
        #expect(parsed.network.antispoof)
        #expect(parsed.network.netdev == "eth0")
    }

    @Test func routeAndNat() throws {
        let route = try config("(network-script network-route)\n(vif-script vif-route)")
        #expect(route.network.mode == .route)
        #expect(route.vif.mode == .route)
        let nat = try config("(network-script 'network-nat netdev=eth1')\n(vif-script vif-nat)")
        #expect(nat.network.mode == .nat)
        #expect(nat.network.netdev == "eth1")
        #expect(nat.network.antispoof == false)
        #expect(nat.vif.mode == .nat)
        let dummy = try config("(network-script network-dummy)")
        #expect(dummy.network.mode == .none)
    }

    @Test func vifScriptArguments() throws {
        let parsed = try config(
            "(vif-script 'vif-bridge bridge=xenbr1')\n(network-script network-bridge)")
        #expect(parsed.vif.bridge == "xenbr1")
        let route = try config("(vif-script 'vif-route netdev=eth3')")
        #expect(route.vif.netdev == "eth3")
    }

    @Test("minimum-restart-time: xend's restart-loop guard, 20 s unless set")
    func restartGuard() throws {
        #expect(try config("(dom0-cpus 0)").minimumRestartTime == 20)
        #expect(try config("(minimum-restart-time 600)").minimumRestartTime == 600)
        #expect(try config("(minimum-restart-time -5)").minimumRestartTime == 0)
    }

    @Test("guest-shutdown-timeout: the host shutdown's deadline, 60 s unless set, 0 to a day")
    func guestShutdownDeadline() throws {
        #expect(try config("(dom0-cpus 0)").guestShutdownTimeout == 60)
        #expect(try config("(guest-shutdown-timeout 15)").guestShutdownTimeout == 15)
        #expect(try config("(guest-shutdown-timeout -1)").guestShutdownTimeout == 0)
        #expect(try config("(guest-shutdown-timeout 999999)").guestShutdownTimeout == 86_400)
        #expect(throws: ConfigError.self) { try config("(guest-shutdown-timeout soon)") }
    }

    @Test func typedKeys() throws {
        let parsed = try config(
            """
            (dom0-min-mem 196)
            (dom0-cpus '2')
            (console-limit 2048)
            (enable-dump yes)
            (xend-relocation-server True)
            (xend-relocation-port 8002)
            (xend-relocation-address '')
            (xend-relocation-hosts-allow '^localhost$ ^localhost\\\\.localdomain$')
            (vnc-listen 0.0.0.0)
            (xen-api-server ((9363 '^localhost$') (unix)))
            """)
        #expect(parsed.dom0MinMem == 196)
        #expect(parsed.dom0CPUs == 2)
        #expect(parsed.consoleLimit == 2048)
        #expect(parsed.enableDump)
        #expect(parsed.relocationServer)
        #expect(parsed.relocationAddress == "")
        #expect(parsed.relocationHostsAllow == #"^localhost$ ^localhost\.localdomain$"#)
        #expect(parsed.vncListen == "0.0.0.0")
        #expect(parsed.bool("enable-dom0-ballooning") == true)
        guard case .expression(let api) = parsed.option("xen-api-server") else {
            Issue.record("xen-api-server is not an expression")
            return
        }
        #expect(api.count == 1)
        #expect(parsed.warnings.isEmpty)
    }

    @Test func unknownKeysWarnNotFail() throws {
        let parsed = try config("(frobnicate yes)\n(dom0-cpus 1)")
        #expect(parsed.unknown.map(\.key) == ["frobnicate"])
        #expect(parsed.warnings.count == 1)
        #expect(
            parsed.warnings[0].description
                == "x.sxp:1:2: warning: unknown key frobnicate: kept, but nothing reads it")
        #expect(parsed.dom0CPUs == 1)
    }

    @Test func firstDuplicateWinsAsInXend() throws {
        let parsed = try config("(dom0-cpus 1)\n(dom0-cpus 2)")
        #expect(parsed.dom0CPUs == 1)
        #expect(parsed.warnings.first?.location == NetConf.SourceLocation(line: 2, column: 2))
    }

    @Test func ignoredFormsWarn() throws {
        let parsed = try config("stray\n()\n((nested) x)\n(logfile /a /b)")
        #expect(parsed.warnings.map(\.location.line) == [1, 2, 3, 4])
        #expect(parsed.text("logfile") == "/a")
    }

    @Test func valueErrorsAreLocated() {
        let found = errors(
            """
            (dom0-min-mem lots)
              (enable-dump perhaps)
            (dom0-cpus)
            (network-script 'network-bridge antispoof=sometimes')
            (vif-script (vif-bridge))
            """)
        #expect(
            found.map(\.location) == [
                NetConf.SourceLocation(line: 1, column: 15),
                NetConf.SourceLocation(line: 2, column: 16),
                NetConf.SourceLocation(line: 3, column: 1),
                NetConf.SourceLocation(line: 4, column: 17),
                NetConf.SourceLocation(line: 5, column: 13),
            ])
        #expect(
            found[0].description == "x.sxp:1:15: error: dom0-min-mem expects an integer, not lots")
    }

    @Test func unsupportedScriptsAreErrors() {
        #expect(errors("(network-script network-frob)").count == 1)
        #expect(errors("(vif-script vif-frob)").count == 1)
        #expect(errors("(network-script 'network-bridge bridge=a/b')").count == 1)
        #expect(
            errors("(network-script 'network-bridge netdev=waytoolonginterfacename')").count == 1)
        #expect(errors("(network-script 'network-bridge bridge=eth0')").count == 1)
    }

    @Test func syntaxErrorsBecomeConfigErrors() {
        let found = errors("(dom0-cpus 1)\n(vif-script 'vif-bridge")
        #expect(found.count == 1)
        #expect(found[0].location == NetConf.SourceLocation(line: 2, column: 13))
    }

    @Test func unusedScriptArgumentsWarn() throws {
        let parsed = try config("(network-script 'network-bridge colour=blue loose')")
        #expect(parsed.warnings.count == 2)
    }

    @Test func mismatchedVifScriptWarns() throws {
        let parsed = try config("(network-script network-route)\n(vif-script vif-bridge)")
        #expect(parsed.warnings.count == 1)
    }

    /// `check`'s output is itself a configuration that reads back to the
    /// same effective values.
    @Test func effectiveConfigurationReadsBack() throws {
        let original = try config(
            """
            (network-script 'network-bridge netdev=eth1 bridge=xenbr1 antispoof=yes')
            (vif-script 'vif-bridge bridge=xenbr1')
            (dom0-min-mem 196)
            (xend-relocation-hosts-allow '^localhost$ ^localhost\\\\.localdomain$')
            (mystery 42)
            """)
        let report = Report.effectiveConfiguration(original)
        #expect(report.contains("read by netconf"))
        #expect(report.contains("kept, not acted on"))
        #expect(report.contains("(mystery 42)  # line 5"))
        let again = try config(report)
        #expect(again.network == original.network)
        #expect(again.vif == original.vif)
        for option in original.options where option.spec.kind != .script {
            #expect(
                again.option(option.spec.name).rendered == option.value.rendered,
                "\(option.spec.name)")
        }
    }

    /// The configurations the project ships parse without complaint.
    @Test(arguments: ["xend-config.sxp", "xend-config-route.sxp"])
    func shippedConfigurations(name: String) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("netconf").appendingPathComponent(name).path
        let loaded = try #require(try XendConfig.load(path: path))
        #expect(loaded.warnings.isEmpty)
        if name == "xend-config.sxp" {
            #expect(loaded.network.mode == .bridge)
            #expect(loaded.network.bridge == "xenbr0")
            #expect(loaded.vif.mode == .bridge)
        } else {
            #expect(loaded.network.mode == .route)
            #expect(loaded.vif.mode == .route)
        }
    }

    @Test func interfaceNames() {
        #expect(isValidInterfaceName("eth0"))
        #expect(isValidInterfaceName("vif12.3"))
        #expect(!isValidInterfaceName(""))
        #expect(!isValidInterfaceName("sixteen-chars-xx"))
        #expect(!isValidInterfaceName("a b"))
        #expect(!isValidInterfaceName("a:b"))
        #expect(!isValidInterfaceName(".."))
        #expect(!isValidInterfaceName("a\"b"))
        #expect(parseXendBool("Yes") == true)
        #expect(parseXendBool("OFF") == false)
        #expect(parseXendBool("maybe") == nil)
    }
}
