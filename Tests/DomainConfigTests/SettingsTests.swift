import Testing

@testable import DomainConfig

/// Every supported key, xend's defaults, and validation of each.
@Suite struct SettingsTests {
    @Test func defaults() throws {
        let spec = try evaluate(kernelLine, file: "/etc/xen/web")
        #expect(spec.name == "web")  // xm 3.0.3: the config file's base name
        #expect(spec.memory == 128)
        #expect(spec.maxmem == 128)
        #expect(spec.vcpus == 1)
        #expect(spec.cpus == nil)
        #expect(spec.uuid == nil)
        #expect(spec.ramdisk == nil)
        #expect(spec.onPoweroff == .destroy)
        #expect(spec.onReboot == .restart)
        #expect(spec.onCrash == .restart)
        #expect(spec.cmdline == "")
        #expect(spec.disks.isEmpty)
        #expect(spec.vifs.isEmpty)
        #expect(spec.warnings.isEmpty)
    }

    @Test func everySupportedKey() throws {
        let spec = try evaluate(
            """
            kernel = "/boot/vmlinuz-2.6.16-xenU"
            ramdisk = "/boot/initrd.gz"
            builder = 'linux'
            memory = 256
            maxmem = 512
            name = "web-1.example:a/b+c_d"
            uuid = "06ED00FE-1162-4fc4-b5d8-11993ee4a8b9"
            vcpus = 4
            cpus = "0-3,^1"
            vif = [ 'mac=00:16:3e:00:00:11, bridge=xenbr1, ip=10.0.0.2 10.0.0.3/24, script=vif-route, rate=10Mb/s@50ms, vifname=web0, type=netfront, backend=0' ]
            disk = [ 'tap:aio:/srv/web.img,xvda1,w!', 'phy:sdb,xvdb,r,Domain-0', 'file:/srv/cd.iso,hdc:cdrom,r' ]
            root = "/dev/xvda1 ro"
            extra = "4 console=xvc0"
            on_poweroff = 'preserve'
            on_reboot = 'rename-restart'
            on_crash = 'destroy'
            """)
        #expect(spec.kernel == "/boot/vmlinuz-2.6.16-xenU")
        #expect(spec.ramdisk == "/boot/initrd.gz")
        #expect(spec.memory == 256)
        #expect(spec.maxmem == 512)
        #expect(spec.name == "web-1.example:a/b+c_d")
        #expect(spec.uuid == "06ed00fe-1162-4fc4-b5d8-11993ee4a8b9")
        #expect(spec.vcpus == 4)
        #expect(spec.cpus?.members == [0, 2, 3])
        #expect(spec.cpus?.specification == "0-3,^1")
        #expect(spec.root == "/dev/xvda1 ro")
        #expect(spec.extra == "4 console=xvc0")
        #expect(spec.cmdline == "root=/dev/xvda1 ro 4 console=xvc0")
        #expect(spec.onPoweroff == .preserve)
        #expect(spec.onReboot == .renameRestart)
        #expect(spec.onCrash == .destroy)
        #expect(
            spec.vifs == [
                VifSpec(
                    mac: mac("00:16:3e:00:00:11"), bridge: "xenbr1",
                    ip: ["10.0.0.2", "10.0.0.3/24"],
                    script: "vif-route", rate: VifRate(parsing: "10Mb/s@50ms"), vifname: "web0",
                    type: .netfront)
            ])
        #expect(spec.vifs[0].rate?.xenstoreValue == "62500,50000")
        #expect(
            spec.disks == [
                DiskSpec(
                    uname: "tap:aio:/srv/web.img", source: .tapAio(path: "/srv/web.img"),
                    dev: "xvda1",
                    virtualDevice: "xvda1", deviceNumber: 51713, mode: .forceReadWrite),
                DiskSpec(
                    uname: "phy:sdb", source: .phy(path: "/dev/sdb"), dev: "xvdb",
                    virtualDevice: "xvdb", deviceNumber: 51728, mode: .readOnly),
                DiskSpec(
                    uname: "file:/srv/cd.iso", source: .file(path: "/srv/cd.iso"), dev: "hdc:cdrom",
                    virtualDevice: "hdc", deviceNumber: 22 << 8, deviceType: .cdrom, mode: .readOnly
                ),
            ])
        #expect(spec.disks.map(\.backendType) == ["tap", "phy", "file"])
        #expect(spec.disks.map(\.backendParams) == ["aio:/srv/web.img", "sdb", "/srv/cd.iso"])
        #expect(spec.warnings.isEmpty)
    }

    @Test func relativeKernelAndRamdiskAreMadeAbsolute() throws {
        let spec = try evaluate(
            "kernel = 'kernels/../vmlinuz'\nramdisk = './initrd'\n", workingDirectory: "/srv/xen")
        #expect(spec.kernel == "/srv/xen/vmlinuz")
        #expect(spec.ramdisk == "/srv/xen/initrd")
    }

    @Test func emptyStringsCountAsUnset() throws {
        let spec = try evaluate(
            kernelLine + "ramdisk = ''\nroot = ''\nextra = ''\nname = ''\n", file: "/x/vm7")
        #expect(spec.ramdisk == nil)
        #expect(spec.root == nil)
        #expect(spec.extra == nil)
        #expect(spec.name == "vm7")
        #expect(spec.cmdline == "")
    }

    @Test func memoryAsDecimalStringIsAccepted() throws {
        // xend ran int() over memory, so "256" worked.
        #expect(try evaluate(kernelLine + "memory = '256'\n").memory == 256)
    }

    @Test func maxmemBelowMemoryIsRaised() throws {
        let spec = try evaluate(kernelLine + "memory = 256\nmaxmem = 128\n")
        #expect(spec.maxmem == 256)
    }

    @Test func rootPrefixIsStripped() throws {
        let spec = try evaluate(kernelLine + "root = 'root=/dev/sda1'\n")
        #expect(spec.root == "/dev/sda1")
        #expect(spec.cmdline == "root=/dev/sda1")
    }

    @Test func kernelIPConfiguration() throws {
        let spec = try evaluate(
            kernelLine
                + """
                ip = '10.0.0.5'
                gateway = '10.0.0.1'
                netmask = '255.255.255.0'
                hostname = 'vm5'
                root = '/dev/nfs'
                nfs_server = '10.0.0.9'
                nfs_root = '/export/vm5'
                extra = '3'
                """)
        #expect(spec.ipConfiguration == "10.0.0.5:10.0.0.9:10.0.0.1:255.255.255.0:vm5:eth0:off")
        #expect(spec.extra == "nfsroot=10.0.0.9:/export/vm5 3")
        #expect(
            spec.cmdline
                == "ip=10.0.0.5:10.0.0.9:10.0.0.1:255.255.255.0:vm5:eth0:off root=/dev/nfs "
                + "nfsroot=10.0.0.9:/export/vm5 3")
    }

    @Test func dhcpWithoutAddress() throws {
        let spec = try evaluate(kernelLine + "dhcp = 'dhcp'\n")
        // xm's placeholder NFS server when none is set.
        #expect(spec.ipConfiguration == ":1.2.3.4::::eth0:dhcp")
    }

    @Test func nfsRootNeedsServer() {
        let error = failure(kernelLine + "nfs_root = '/export'\n")
        #expect(error?.key == "nfs_root")
        #expect(error?.location?.line == 2)
    }

    @Test func legacyCpuIsPrependedToCpus() throws {
        #expect(try evaluate(kernelLine + "cpu = 2\n").cpus?.members == [2])
        #expect(try evaluate(kernelLine + "cpu = 0\ncpus = '4-5'\n").cpus?.members == [0, 4, 5])
        // "0-3,^1,1": later entries win.
        #expect(try evaluate(kernelLine + "cpus = '0-3,^1,1'\n").cpus?.members == [0, 1, 2, 3])
        #expect(try evaluate(kernelLine + "cpus = 3\n").cpus?.members == [3])
        #expect(try evaluate(kernelLine + "cpus = ''\n").cpus == nil)
    }

    @Test func deprecatedRestart() throws {
        let spec = try evaluate(kernelLine + "restart = 'never'\non_crash = 'preserve'\n")
        #expect(spec.onPoweroff == .destroy)
        #expect(spec.onReboot == .destroy)
        #expect(spec.onCrash == .preserve)  // on_crash wins over restart
        #expect(spec.warnings.map(\.key) == ["restart"])
    }

    @Test func deprecatedNicsAddsDefaultVifs() throws {
        var generator = SeededGenerator(state: 1)
        let spec = try DomainConfigFile.evaluate(
            kernelLine + "vif = ['bridge=br0']\nnics = 3\n", file: "t", using: &generator)
        #expect(spec.vifs.count == 3)
        #expect(spec.vifs[0].bridge == "br0")
        #expect(spec.vifs[1].macGenerated && spec.vifs[2].macGenerated)
        #expect(spec.vifs[1].mac != spec.vifs[2].mac)
        #expect(spec.warnings.map(\.key) == ["nics"])
    }

    // MARK: warnings

    @Test func unknownAndUnsupportedKeysAreWarnings() throws {
        let spec = try evaluate(
            kernelLine
                + """
                base = '/srv'
                vnc = 1
                pae = 0
                bootloader = '/usr/bin/pygrub'
                colour = 'blue'
                """)
        let warnings = spec.warnings.map { "\($0.key)@\($0.origin?.description ?? "")" }
        #expect(
            warnings == [
                "base@/etc/xen/test:2:1", "vnc@/etc/xen/test:3:1", "bootloader@/etc/xen/test:5:1",
                "colour@/etc/xen/test:6:1",
            ])
        #expect(spec.warnings[0].message.contains("not an xm setting"))
        #expect(spec.warnings[1].message.contains("HVM"))
    }

    // MARK: validation errors

    @Test func missingKernel() {
        let error = failure("memory = 64\nname = 'x'\n", file: "/etc/xen/x")
        #expect(
            error
                == .missingSetting(
                    key: "kernel", file: "/etc/xen/x",
                    "no kernel given; set kernel = '/boot/vmlinuz-...'"))
        let withBootloader = failure("bootloader = 'pygrub'\n")
        #expect(withBootloader?.description.contains("pygrub") == true)
    }

    @Test func kernelMustBeAString() {
        let error = failure("kernel = ['/boot/x']\n")
        #expect(error?.key == "kernel")
        #expect(error?.location?.line == 1)
    }

    @Test(arguments: [
        ("memory = 0", "memory"), ("memory = -64", "memory"), ("memory = 'lots'", "memory"),
        ("memory = [64]", "memory"), ("memory = 99999999999", "memory"),
        ("maxmem = 0", "maxmem"), ("vcpus = 0", "vcpus"), ("vcpus = 'two'", "vcpus"),
        ("cpus = '3-1'", "cpus"), ("cpus = 'a'", "cpus"), ("cpus = '0,^0'", "cpus"),
        ("cpus = ['1']", "cpus"), ("cpus = '0-99999'", "cpus"), ("cpu = 'x'", "cpu"),
        ("uuid = 'not-a-uuid'", "uuid"), ("name = 'has space'", "name"), ("name = 3", "name"),
        ("on_crash = 'coredump-destroy'", "on_crash"), ("on_reboot = 'reboot'", "on_reboot"),
        ("builder = 'hvm'", "builder"), ("extra = 4", "extra"), ("disk = 'file:/x,hda1,w'", "disk"),
        ("vif = ''", "vif"), ("disk = [1]", "disk[0]"),
    ])
    func invalidSettingNamesKeyAndLine(assignment: String, key: String) {
        let error = failure(kernelLine + "memory = 64\n\n" + assignment + "\n")
        guard case .invalidSetting(let errorKey, .file(let location), _)? = error else {
            Issue.record("\(assignment): expected invalidSetting, got \(String(describing: error))")
            return
        }
        #expect(errorKey == key, "\(assignment)")
        #expect(location.line == 4, "\(assignment)")
        #expect(location.file == "/etc/xen/test")
    }

    @Test func errorPointsAtTheLastAssignment() {
        let error = failure(kernelLine + "memory = 64\nmemory -= 64\n")
        #expect(error?.key == "memory")
        #expect(error?.location == SourceLocation(file: "/etc/xen/test", line: 3, column: 1))
        #expect(
            error?.description
                == "/etc/xen/test:3:1: memory: must be a positive number of MiB (at most 16777216), got 0"
        )
    }

    @Test func nameDefaultMustBeValid() {
        let error = failure(kernelLine, file: "/etc/xen/my vm")
        guard case .missingSetting(let key, _, let message)? = error else {
            Issue.record("expected missingSetting, got \(String(describing: error))")
            return
        }
        #expect(key == "name")
        #expect(message.contains("set name"))
    }
}
