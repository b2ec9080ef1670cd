import Testing

@testable import Provisioning

@Suite("bundle layout")
struct BundleTests {
    func good() -> TarBuilder {
        var tar = TarBuilder()
        tar.directory("./")
        tar.file("./xend-config.sxp", "(network-script network-bridge)\n")
        tar.directory("xen/")
        tar.file("xen/web", "name = \"web\"\n")
        tar.file("auto", "# started at boot\nweb\n\n demo \n")
        tar.directory("ssh")
        tar.file("ssh/authorized_keys", "ssh-ed25519 AAAA test\n")
        tar.file("ssh/dropbear_ed25519_host_key", "KEY")
        return tar
    }

    @Test func plansEveryMember() throws {
        let bundle = try Bundle.plan(archive: good().finished())
        #expect(
            bundle.files.map(\.target) == [
                "/etc/xen/xend-config.sxp", "/etc/xen/web", "/root/.ssh/authorized_keys",
                "/etc/dropbear/dropbear_ed25519_host_key",
            ])
        #expect(bundle.files.map(\.mode) == [0o644, 0o644, 0o600, 0o600])
        #expect(bundle.auto == ["web", "demo"])
        #expect(bundle.hasHostKeys)
    }

    @Test(arguments: [
        ("../etc/passwd", Bundle.Refusal.parentReference("../etc/passwd")),
        ("xen/../../etc/passwd", .parentReference("xen/../../etc/passwd")),
        ("/etc/passwd", .absolutePath("/etc/passwd")),
        ("etc/passwd", .outsideLayout("etc/passwd")),
        ("xen/sub/web", .outsideLayout("xen/sub/web")),
        ("xen/.hidden", .outsideLayout("xen/.hidden")),
        ("ssh/id_rsa", .outsideLayout("ssh/id_rsa")),
        ("xen/xend-config.sxp", .outsideLayout("xen/xend-config.sxp")),
    ])
    func hostileNamesRefuseTheWholeBundle(_ name: String, _ refusal: Bundle.Refusal) {
        var tar = good()
        tar.file(name, "root::0:0::/:/bin/sh\n")
        #expect(throws: refusal) { try Bundle.plan(archive: tar.finished()) }
    }

    @Test func linksAreRefusedWherever() {
        for (type, target) in [
            (UInt8(ascii: "2"), "/etc/passwd"), (UInt8(ascii: "1"), "../../etc/shadow"),
            (UInt8(ascii: "2"), "web"),
        ] {
            var tar = good()
            tar.add(TarBuilder.Header(name: "xen/evil", type: type, link: target))
            #expect(throws: Bundle.Refusal.link("xen/evil", target: target)) {
                try Bundle.plan(archive: tar.finished())
            }
        }
    }

    @Test func deviceNodesAreRefused() {
        var tar = good()
        tar.add(TarBuilder.Header(name: "xen/mem", type: UInt8(ascii: "3")))
        #expect(throws: Bundle.Refusal.special("xen/mem", type: "3")) {
            try Bundle.plan(archive: tar.finished())
        }
    }

    @Test func duplicatesAreRefused() {
        var tar = good()
        tar.file("xen/./web", "again")
        #expect(throws: Bundle.Refusal.duplicate("xen/./web")) {
            try Bundle.plan(archive: tar.finished())
        }
    }

    @Test func badAutoNamesAreRefused() {
        var tar = TarBuilder()
        tar.file("auto", "web\n../../bin/sh\n")
        #expect(throws: Bundle.Refusal.badAutoList(line: 2, "../../bin/sh")) {
            try Bundle.plan(archive: tar.finished())
        }
    }

    @Test func brokenArchivesAreRefused() {
        var tar = good()
        tar.add(TarBuilder.Header(name: "xen/x", checksumDelta: 3), data: [1])
        guard
            case .some(.archive(.badChecksum)) = Result(catching: { () throws(Bundle.Refusal) in
                try Bundle.plan(archive: tar.finished())
            }).failure
        else {
            Issue.record("a bad checksum was not refused")
            return
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
