import SeedConfigs
import Testing

@testable import DomainConfig

/// The three example configs from the seed talk (2006) (``SeedConfigs``).
@Suite struct SeedConfigTests {
    @Test func debian1() throws {
        let spec = try evaluate(SeedConfigs.debian1, file: "/etc/xen/debian1")
        let expected = DomainSpec(
            name: "debian1", kernel: "/boot/xendomU/vmlinuz-2.6.16.29-xenU", memory: 256,
            maxmem: 256, vcpus: 1, root: "/dev/hda1 ro", extra: "4",
            cmdline: "root=/dev/hda1 ro 4", onPoweroff: .destroy, onReboot: .restart,
            onCrash: .restart,
            disks: [
                DiskSpec(
                    uname: "file:/mnt/xensys2-root.img",
                    source: .file(path: "/mnt/xensys2-root.img"),
                    dev: "hda1", virtualDevice: "hda1", deviceNumber: 769, mode: .readWrite),
                DiskSpec(
                    uname: "file:/mnt/xensys2-swap.img",
                    source: .file(path: "/mnt/xensys2-swap.img"),
                    dev: "hda2", virtualDevice: "hda2", deviceNumber: 770, mode: .readWrite),
                DiskSpec(
                    uname: "phy:/dev/hdc", source: .phy(path: "/dev/hdc"), dev: "hdb",
                    virtualDevice: "hdb", deviceNumber: 832, mode: .readOnly),
            ],
            vifs: [VifSpec(mac: generatedMAC, macGenerated: true)])
        #expect(spec == expected)
    }

    @Test func netbsd() throws {
        let spec = try evaluate(SeedConfigs.netbsd, file: "/etc/xen/netbsd")
        let expected = DomainSpec(
            name: "netbsd", kernel: "/boot/xendomU/netbsd-XEN3_DOMU", memory: 64, maxmem: 64,
            root: "/dev/wd0d", cmdline: "root=/dev/wd0d",
            disks: [
                // xend read "0x3" as hex: device 3.
                DiskSpec(
                    uname: "file:/mnt/netbsd-root.img", source: .file(path: "/mnt/netbsd-root.img"),
                    dev: "0x3", virtualDevice: "0x3", deviceNumber: 3, mode: .readWrite),
                // "cd0a" is all hex digits, so xend read it as 0xcd0a.
                DiskSpec(
                    uname: "phy:/dev/hdc", source: .phy(path: "/dev/hdc"), dev: "cd0a",
                    virtualDevice: "cd0a", deviceNumber: 0xcd0a, mode: .readOnly),
            ],
            vifs: [VifSpec(mac: mac("00:11:85:13:37:dd"), bridge: "xenbr0")])
        #expect(spec == expected)
        #expect(spec.disks[1].deviceNumber == 52490)
    }

    @Test func freebsdInstall() throws {
        let spec = try evaluate(SeedConfigs.freebsd, file: "/etc/xen/freebsd-xen-INSTALL")
        let extra = "boot_verbose,boot_single,vfs.root.mountfrom=ufs:/dev/md0,kern.hz=100"
        let expected = DomainSpec(
            name: "freebsd-xen-INSTALL", kernel: "/boot/xendomU/freebsd-XENU_INSTALL",
            memory: 256, maxmem: 256, extra: extra, cmdline: extra,
            disks: [
                DiskSpec(
                    uname: "file:/mnt/freebsd/freebsd-root.img",
                    source: .file(path: "/mnt/freebsd/freebsd-root.img"), dev: "hda1",
                    virtualDevice: "hda1", deviceNumber: 769, mode: .readWrite)
            ],
            vifs: [VifSpec(mac: generatedMAC, macGenerated: true)])
        #expect(spec == expected)
    }

    /// The dry run as xm 3.0.3 laid it out (80 columns), for debian1.
    @Test func debian1DryRun() throws {
        let spec = try evaluate(SeedConfigs.debian1, file: "/etc/xen/debian1")
        #expect(
            spec.dryRunText == """
                (vm
                    (name debian1)
                    (memory 256)
                    (on_poweroff destroy)
                    (on_reboot restart)
                    (on_crash restart)
                    (vcpus 1)
                    (image
                        (linux
                            (kernel /boot/xendomU/vmlinuz-2.6.16.29-xenU)
                            (root '/dev/hda1 ro')
                            (args 4)
                        )
                    )
                    (device (vbd (uname file:/mnt/xensys2-root.img) (dev hda1) (mode w)))
                    (device (vbd (uname file:/mnt/xensys2-swap.img) (dev hda2) (mode w)))
                    (device (vbd (uname phy:/dev/hdc) (dev hdb) (mode r)))
                    (device (vif))
                )

                """)
    }

    @Test func netbsdDryRun() throws {
        let spec = try evaluate(SeedConfigs.netbsd, file: "/etc/xen/netbsd")
        #expect(
            spec.dryRunText == """
                (vm
                    (name netbsd)
                    (memory 64)
                    (on_poweroff destroy)
                    (on_reboot restart)
                    (on_crash restart)
                    (vcpus 1)
                    (image (linux (kernel /boot/xendomU/netbsd-XEN3_DOMU) (root /dev/wd0d)))
                    (device (vbd (uname file:/mnt/netbsd-root.img) (dev 0x3) (mode w)))
                    (device (vbd (uname phy:/dev/hdc) (dev cd0a) (mode r)))
                    (device (vif (mac 00:11:85:13:37:dd) (bridge xenbr0)))
                )

                """)
    }

    /// '=' and ',' are not atom characters, so the args are quoted, and at
    /// column 12 they no longer fit: xend's printer broke the list.
    @Test func freebsdDryRun() throws {
        let spec = try evaluate(SeedConfigs.freebsd, file: "/etc/xen/freebsd-xen-INSTALL")
        #expect(
            spec.dryRunText == """
                (vm
                    (name freebsd-xen-INSTALL)
                    (memory 256)
                    (on_poweroff destroy)
                    (on_reboot restart)
                    (on_crash restart)
                    (vcpus 1)
                    (image
                        (linux
                            (kernel /boot/xendomU/freebsd-XENU_INSTALL)
                            (args
                                'boot_verbose,boot_single,vfs.root.mountfrom=ufs:/dev/md0,kern.hz=100'
                            )
                        )
                    )
                    (device
                        (vbd (uname file:/mnt/freebsd/freebsd-root.img) (dev hda1) (mode w))
                    )
                    (device (vif))
                )

                """)
    }
}
