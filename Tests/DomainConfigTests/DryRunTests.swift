import Testing

@testable import DomainConfig

/// The SXP printer against layouts produced by xend's own PrettyPrint.py
/// (Xen 3.0.3) for the same trees.
@Suite struct DryRunTests {
    @Test func atomsAndQuoting() {
        #expect(DomainSXP.atom("/dev/hda1").text == "/dev/hda1")
        #expect(DomainSXP.atom("/dev/hda1 ro").text == "'/dev/hda1 ro'")
        #expect(DomainSXP.atom("it's").text == "\"it's\"")
        #expect(DomainSXP.atom("a=b").text == "'a=b'")
        #expect(DomainSXP.atom("10Mb/s@50ms").text == "'10Mb/s@50ms'")
        #expect(DomainSXP.atom("@").text == "@")
        #expect(DomainSXP.atom("tab\there").text == "'tab\\there'")
        #expect(DomainSXP.atom("").text == "")
        #expect(DomainSXP.integer(-3).text == "-3")
        #expect(DomainSXP.list([.atom("vif")]).text == "(vif)")
    }

    @Test func fitsOnOneLine() {
        let tree = DomainSXP.list([.atom("device"), .list([.atom("vif")])])
        #expect(tree.prettyPrinted() == "(device (vif))\n")
    }

    /// Nested lists break only where they do not fit; a broken list puts
    /// its closing parenthesis on its own line.
    @Test func breaksLikeXend() {
        func pair(_ key: String, _ value: String) -> DomainSXP {
            .list([.atom(key), .atom(value)])
        }
        let tree = DomainSXP.list([
            .list([.atom("head"), pair("a", String(repeating: "x", count: 30))]),
            pair("b", String(repeating: "y", count: 60)),
            .list([.atom("c"), .list([.atom("d"), pair("e", String(repeating: "z", count: 70))])]),
        ])
        let x30 = String(repeating: "x", count: 30)
        let y60 = String(repeating: "y", count: 60)
        let z70 = String(repeating: "z", count: 70)
        #expect(
            tree.prettyPrinted() == """
                ((head (a \(x30)))
                    (b \(y60))
                    (c
                        (d
                            (e
                                \(z70)
                            )
                        )
                    )
                )

                """)
    }

    @Test func narrowWidth() {
        let tree = DomainSXP.list([
            .atom("vm"), .list([.atom("name"), .atom("debian1")]), .integer(7),
        ])
        #expect(
            tree.prettyPrinted(width: 10) == "(vm\n    (name\n        debian1\n    )\n    7\n)\n")
    }

    @Test func everyDeviceKindAndOptionalField() throws {
        let spec = try evaluate(
            """
            kernel = '/boot/k'
            ramdisk = '/boot/r'
            name = 'full'
            memory = 64
            maxmem = 128
            uuid = '06ed00fe-1162-4fc4-b5d8-11993ee4a8b9'
            cpus = '0-3,^1'
            ip = '10.0.0.5'
            disk = [ 'tap:aio:/srv/a.img,xvda,w', 'file:/srv/b.iso,hdc:cdrom,r' ]
            vif = [ 'ip=10.0.0.5 10.0.0.6, script=vif-route, rate=1MB/s, vifname=v0, type=ioemu' ]
            """)
        #expect(
            spec.dryRunText == """
                (vm
                    (name full)
                    (memory 64)
                    (maxmem 128)
                    (on_poweroff destroy)
                    (on_reboot restart)
                    (on_crash restart)
                    (vcpus 1)
                    (uuid 06ed00fe-1162-4fc4-b5d8-11993ee4a8b9)
                    (cpus '0-3,^1')
                    (image
                        (linux
                            (kernel /boot/k)
                            (ramdisk /boot/r)
                            (ip 10.0.0.5:1.2.3.4::::eth0:off)
                        )
                    )
                    (device (tap (uname tap:aio:/srv/a.img) (dev xvda) (mode w)))
                    (device (vbd (uname file:/srv/b.iso) (dev hdc:cdrom) (mode r)))
                    (device
                        (vif
                            (ip '10.0.0.5 10.0.0.6')
                            (script vif-route)
                            (rate 1MB/s)
                            (vifname v0)
                            (type ioemu)
                        )
                    )
                )

                """)
    }
}
