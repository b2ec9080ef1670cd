import SeedConfigs
import Testing

@testable import DomainConfig

/// `xm create FILE var=value key=value`: variables before the file runs,
/// option overrides after it.
@Suite struct CommandLineTests {
    /// Xen's xmexample2, reduced to our subset (no xm_vars check function).
    static let xmexample2 = """
        kernel = "/boot/vmlinuz-2.6.10-xenU"
        memory = 64
        name = "VM%d" % vmid
        vcpus = 4
        vif = [ '' ]
        disk = [ 'phy:sda%d,sda1,w' % (7+vmid),
                 'phy:sda6,sda6,r' ]
        root = "/dev/sda1 ro"
        extra = "4 VMID=%d usr=/dev/sda6" % vmid
        """

    @Test func argumentsAreSplitIntoVariablesAndOverrides() throws {
        let arguments = try XmCreateArguments([
            "vmid=3", "memory=512", " name = web ", "vif=bridge=br1",
        ])
        #expect(arguments.variables.map(\.name) == ["vmid"])
        #expect(arguments.overrides.map(\.name) == ["memory", "name", "vif"])
        #expect(arguments.overrides[1].value == "web")
        #expect(arguments.overrides[2].value == "bridge=br1")
    }

    @Test func variablesAreVisibleToTheConfig() throws {
        let spec = try evaluate(Self.xmexample2, file: "/etc/xen/xmexample2", arguments: ["vmid=3"])
        #expect(spec.name == "VM3")
        #expect(spec.disks.map(\.uname) == ["phy:sda10", "phy:sda6"])
        #expect(spec.disks[0].source == .phy(path: "/dev/sda10"))
        #expect(spec.disks.map(\.deviceNumber) == [2049, 2054])
        #expect(spec.extra == "4 VMID=3 usr=/dev/sda6")
        #expect(spec.vcpus == 4)
        #expect(spec.warnings.isEmpty, "vmid came from the command line: no warning")
    }

    @Test func missingVariableIsReportedAtItsUse() {
        let error = failure(Self.xmexample2, file: "/etc/xen/xmexample2")
        #expect(error?.location == SourceLocation(file: "/etc/xen/xmexample2", line: 3, column: 17))
        #expect(error?.key == "name")
    }

    @Test func nonNumericVariablesStayStrings() throws {
        let spec = try evaluate(
            kernelLine + "name = 'vm-' + site\nmemory = 64 * scale\n",
            arguments: ["site=ams", "scale=2"])
        #expect(spec.name == "vm-ams")
        #expect(spec.memory == 128)
    }

    @Test func overridesWinOverTheFile() throws {
        let spec = try evaluate(
            SeedConfigs.debian1, file: "/etc/xen/debian1",
            arguments: [
                "memory=512", "name=debian2", "vcpus=2", "extra=single", "on_crash=preserve",
            ])
        #expect(spec.memory == 512)
        #expect(spec.name == "debian2")
        #expect(spec.vcpus == 2)
        #expect(spec.extra == "single")
        #expect(spec.cmdline == "root=/dev/hda1 ro single")
        #expect(spec.onCrash == .preserve)
        #expect(spec.disks.count == 3, "untouched settings stay as the file set them")
    }

    @Test func overridesApplyAfterTheFileRan() throws {
        // The file computes from its own memory value; the override does not
        // change that computation, only the final memory setting (xm's order).
        let spec = try evaluate(
            kernelLine + "memory = 64\nextra = 'mem=%dM' % memory\n", arguments: ["memory=256"])
        #expect(spec.memory == 256)
        #expect(spec.extra == "mem=64M")
    }

    @Test func listOverridesReplaceTheFilesList() throws {
        let spec = try evaluate(
            SeedConfigs.debian1, file: "/etc/xen/debian1",
            arguments: [
                "disk=file:/srv/a.img,xvda,w", "disk=file:/srv/b.img,xvdb,r", "vif=bridge=br1",
            ])
        #expect(spec.disks.map(\.virtualDevice) == ["xvda", "xvdb"])
        #expect(spec.vifs.count == 1)
        #expect(spec.vifs[0].bridge == "br1")
    }

    @Test func badOverrideIsReportedWithTheArgument() {
        #expect(
            throws: DomainConfigError.invalidArgument("memory=lots", "'memory' needs an integer")
        ) {
            try XmCreateArguments(["memory=lots"])
        }
        #expect(throws: DomainConfigError.self) { try XmCreateArguments(["vncviewer=maybe"]) }
        #expect(throws: DomainConfigError.self) { try XmCreateArguments(["-c"]) }
        #expect(throws: DomainConfigError.self) { try XmCreateArguments(["2x=1"]) }
    }

    @Test func invalidOverrideValueNamesTheArgument() {
        let error = failure(SeedConfigs.debian1, arguments: ["memory=0"])
        #expect(
            error
                == .invalidSetting(
                    key: "memory", origin: .commandLine(argument: "memory=0"),
                    "must be a positive number of MiB (at most 16777216), got 0"))
        #expect(error?.description.hasPrefix("command line argument 'memory=0': memory:") == true)

        let disk = failure(SeedConfigs.debian1, arguments: ["disk=file:/x,hdz,w"])
        guard case .invalidDisk(0, "file:/x,hdz,w", .commandLine("disk=file:/x,hdz,w"), _)? = disk
        else {
            Issue.record(
                "expected invalidDisk from the command line, got \(String(describing: disk))")
            return
        }
    }

    @Test func unsupportedOverrideIsAWarning() throws {
        let spec = try evaluate(kernelLine, arguments: ["vnc=1"])
        #expect(
            spec.warnings.map(\.description) == [
                "command line argument 'vnc=1': vnc: not supported by Proxenos (applies to HVM "
                    + "guests, Proxenos runs PV guests only); ignored"
            ])
    }
}
