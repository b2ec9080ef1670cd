import Testing

@testable import DomainConfig

/// Virtual device numbers, disk and vif entry parsing.
@Suite struct DeviceTests {
    // MARK: device numbers (xend 3.0.3 blkdev_name_to_number)

    @Test(arguments: [
        ("hda", 3 << 8 | 0),  // 768: IDE major 3
        ("hda1", 3 << 8 | 1),  // 769
        ("hdb", 3 << 8 | 64),  // 832: second disk on the major
        ("hdb63", 3 << 8 | 127),
        ("hdc", 22 << 8 | 0),  // 5632: second IDE major
        ("hdd2", 22 << 8 | 66),
        ("hdt", 91 << 8 | 64),  // last of the ten IDE majors
        ("sda", 8 << 8 | 0),  // 2048
        ("sda1", 8 << 8 | 1),  // 2049
        ("sdb15", 8 << 8 | 31),
        ("sdp", 8 << 8 | 240),
        ("xvda", 202 << 8 | 0),  // 51712
        ("xvdb1", 202 << 8 | 17),  // 51729
        ("xvdp15", 202 << 8 | 255),
        ("/dev/xvda2", 202 << 8 | 2),
        ("0x3", 3),  // NetBSD example: hex
        ("cd0a", 0xcd0a),  // NetBSD example: all hex digits, so hex (52490)
        ("301", 0x301),  // a bare hex number
        ("0x0301", 0x301),
    ])
    func deviceNumber(name: String, number: Int) {
        #expect(VirtualDevice.number(for: name) == number)
    }

    @Test(arguments: [
        "wd0d",  // NetBSD name: 'w' is not a hex digit, no rule applies
        "xbd0", "sdq", "hdu", "xvdq", "sda16", "hda64", "xvda0", "sda01", "hdaa", "xvd",
        "0x", "", "123456789", "/dev/0x3", "sda1x",
    ])
    func unmappableDeviceName(name: String) {
        #expect(VirtualDevice.number(for: name) == nil)
    }

    @Test func unmappableNameIsAClearError() {
        let error = failure(kernelLine + "disk = [ 'file:/x.img,wd0d,w' ]\n")
        guard case .invalidDisk(0, "file:/x.img,wd0d,w", .file(let location), let message)? = error
        else {
            Issue.record("expected invalidDisk, got \(String(describing: error))")
            return
        }
        #expect(location.line == 2)
        #expect(message.contains("'wd0d' has no device number"))
    }

    // MARK: disk entries

    @Test(arguments: [
        ("file:/x.img,hda1", "found 2 comma-separated fields"),
        ("file:/x.img,hda1,w,0,extra", "found 5"),
        ("/x.img,hda1,w", "type prefix"),
        ("nbd:host:1234,hda1,w", "not supported"),
        ("tap:qcow:/x.qcow,hda1,w", "tap:qcow"),
        ("tap:/x.img,hda1,w", "driver"),
        ("file:,hda1,w", "no path"),
        ("phy:,hda1,w", "no device"),
        ("file:/x.img,,w", "no virtual device"),
        ("file:/x.img,hda1,rw", "mode 'rw'"),
        ("file:/x.img,hda1,", "mode ''"),
        ("file:/x.img,hdc:floppy,r", ":disk or :cdrom"),
        ("file:/x.img,hda1,w,3", "backend domain '3'"),
        ("file:/x.img,sdz,w", "no device number"),
    ])
    func malformedDisk(entry: String, fragment: String) {
        let error = failure(kernelLine + "disk = [ 'file:/ok.img,xvda,w',\n   '\(entry)' ]\n")
        guard case .invalidDisk(let index, let spec, .file(let location), let message)? = error
        else {
            Issue.record("\(entry): expected invalidDisk, got \(String(describing: error))")
            return
        }
        #expect(index == 1)
        #expect(spec == entry)
        #expect(location.line == 3, "the entry's own line")
        #expect(location.column == 4)
        #expect(message.contains(fragment), "\(entry): \(message)")
    }

    @Test func duplicateVirtualDevices() {
        // hda1 twice, and xvda vs its hex spelling 0xca00.
        let error = failure(kernelLine + "disk = ['file:/a,hda1,w', 'file:/b,hda1,r']\n")
        #expect(
            error
                == .duplicateVirtualDevice(
                    device: "hda1", number: 769, first: "file:/a,hda1,w", second: "file:/b,hda1,r",
                    origin: .file(SourceLocation(file: "/etc/xen/test", line: 2, column: 27))))
        let aliased = failure(kernelLine + "disk = ['file:/a,xvda,w', 'file:/b,0xca00,r']\n")
        guard case .duplicateVirtualDevice(_, 51712, _, _, _)? = aliased else {
            Issue.record("expected duplicateVirtualDevice, got \(String(describing: aliased))")
            return
        }
    }

    @Test func diskFieldsAreTrimmed() throws {
        let spec = try evaluate(kernelLine + "disk = [ 'phy:/dev/vg/root , xvda1 , w' ]\n")
        #expect(spec.disks[0].source == .phy(path: "/dev/vg/root"))
        #expect(spec.disks[0].deviceNumber == 51713)
    }

    @Test func ioemuPrefixIsDropped() throws {
        let spec = try evaluate(kernelLine + "disk = [ 'file:/x,ioemu:hda,w' ]\n")
        #expect(spec.disks[0].virtualDevice == "hda")
        #expect(spec.disks[0].dev == "ioemu:hda")
    }

    // MARK: vif entries

    @Test func emptyVifHasDefaultsAndAGeneratedMAC() throws {
        var generator = SeededGenerator(state: 42)
        let spec = try DomainConfigFile.evaluate(
            kernelLine + "vif = [ '', ' ' ]\n", file: "t", using: &generator)
        #expect(spec.vifs.count == 2)
        for vif in spec.vifs {
            #expect(vif.macGenerated)
            #expect(Array(vif.mac.bytes.prefix(3)) == [0x00, 0x16, 0x3e])
            #expect(vif.mac.bytes[3] < 0x80)  // xend: top bit of the random part clear
            #expect(vif.bridge == nil && vif.script == nil && vif.rate == nil && vif.ip.isEmpty)
            #expect(vif.type == .netfront)
        }
        #expect(spec.vifs[0].mac != spec.vifs[1].mac)

        // Same seed, same MACs: the generator is the only source of randomness.
        var again = SeededGenerator(state: 42)
        let repeated = try DomainConfigFile.evaluate(
            kernelLine + "vif = [ '', ' ' ]\n", file: "t", using: &again)
        #expect(repeated.vifs == spec.vifs)
    }

    @Test func constantGeneratorGivesTheHighestMAC() {
        var generator = ConstantGenerator()
        #expect(MACAddress.random(using: &generator).description == "00:16:3e:7f:ff:ff")
        var zero = ConstantGenerator(value: 0)
        #expect(MACAddress.random(using: &zero).description == "00:16:3e:00:00:00")
    }

    @Test(arguments: [
        ("mac=00:16:3e:00:00", "bad MAC"),
        ("mac=00:16:3e:00:00:0g", "bad MAC"),
        ("mac=0:16:3e:00:00:01", "bad MAC"),
        ("mac=00-16-3e-00-00-01", "bad MAC"),
        ("mac=01:16:3e:00:00:01", "multicast"),
        ("bridge", "key=value"),
        ("bridge=br0,", "key=value"),
        ("bridge=br0,bridge=br1", "twice"),
        ("bridge=", "empty value"),
        ("colour=blue", "unknown option 'colour'"),
        ("ip=10.0.0.256", "not an IPv4"),
        ("ip=10.0.0.1 fe80::1", "'fe80::1'"),
        ("ip=10.0.0.1/33", "not an IPv4"),
        ("rate=10Mb", "bad rate"),
        ("rate=10Xb/s", "bad rate"),
        ("rate=10Mb/s@50", "bad rate"),
        ("rate=0Mb/s", "bad rate"),
        ("rate=99999999999999GB/s", "bad rate"),
        ("vifname=a-very-long-interface-name", "not a valid interface name"),
        ("vifname=a/b", "not a valid interface name"),
        ("type=e1000", "netfront or ioemu"),
        ("backend=1", "backend domain '1'"),
    ])
    func malformedVif(entry: String, fragment: String) {
        let error = failure(kernelLine + "vif = [ '',\n  '\(entry)' ]\n")
        guard case .invalidVif(let index, let spec, .file(let location), let message)? = error
        else {
            Issue.record("\(entry): expected invalidVif, got \(String(describing: error))")
            return
        }
        #expect(index == 1)
        #expect(spec == entry)
        #expect(location.line == 3)
        #expect(message.contains(fragment), "\(entry): \(message)")
    }

    @Test func hvmVifOptionsAreWarnings() throws {
        let spec = try evaluate(kernelLine + "vif = [ 'model=rtl8139, bridge=br0' ]\n")
        #expect(spec.vifs[0].bridge == "br0")
        #expect(spec.warnings.map(\.key) == ["vif[0]"])
    }

    @Test func duplicateMACIsAWarning() throws {
        let spec = try evaluate(
            kernelLine + "vif = [ 'mac=00:16:3e:00:00:01', 'mac=00:16:3E:00:00:01' ]\n")
        #expect(spec.warnings.map(\.key) == ["vif[1]"])
    }

    // MARK: rates (xend netif.py parseRate)

    @Test(
        arguments: [
            ("10Mb/s@50ms", 1_250_000, 50_000, "62500,50000"),
            ("10Mb/s", 1_250_000, 50_000, "62500,50000"),  // 50 ms window by default
            ("1GB/s@1s", 1_000_000_000, 1_000_000, "1000000000,1000000"),
            ("100KB/s@20000us", 100_000, 20_000, "2000,20000"),
            ("800b/s@1s", 100, 1_000_000, "100,1000000"),
        ] as [(String, UInt64, UInt64, String)])
    func rate(text: String, bytesPerSecond: UInt64, interval: UInt64, xenstore: String) {
        let rate = VifRate(parsing: text)
        #expect(rate?.bytesPerSecond == bytesPerSecond)
        #expect(rate?.intervalMicroseconds == interval)
        #expect(rate?.xenstoreValue == xenstore)
    }

    // MARK: MAC addresses

    @Test func macParsing() {
        #expect(MACAddress(parsing: "00:11:85:13:37:DD")?.description == "00:11:85:13:37:dd")
        #expect(MACAddress(parsing: "00:11:85:13:37") == nil)
        #expect(MACAddress(parsing: "00:11:85:13:37:dd:ee") == nil)
        #expect(MACAddress(parsing: "00:11:85:13:37:+d") == nil)
        #expect(MACAddress(bytes: [1, 2, 3]) == nil)
    }
}
