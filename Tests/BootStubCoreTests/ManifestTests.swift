import BootStubCore
import Testing

@Suite struct ManifestTests {
    static let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    static let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let text = """
        # proxenos bootstub manifest v1
        xen 3 \(abc) xen-4.17-amd64

        dom0-kernel 0 \(empty) vmlinux
        initrd 3 \(abc.uppercased()) initrd.gz

        """

    @Test func parsesEntriesInOrder() throws {
        try withBuffer(Self.text) { raw in
            let m = try Manifest(text: raw)
            #expect(m.entries.count == 3)
            let xen = try #require(m.entries.at(0))
            #expect(xen.role == .xen && xen.size == 3 && hex(xen.digest) == Self.abc)
            #expect(String(decoding: m.name(of: xen), as: UTF8.self) == "xen-4.17-amd64")
            #expect(m.entries.at(1)?.role == .dom0Kernel)
            #expect(m.entries.at(2)?.role == .initrd)
            #expect(m.entries.at(2)?.digest == m.entries.at(0)?.digest)
        }
    }

    @Test func reportsTheBadLine() {
        let bad: [(String, BootStubError)] = [
            (
                "xen 3 \(Self.abc)\n",
                .manifestMalformed(
                    line: 1, "expected: role size sha256 name [unpacked-size unpacked-sha256]")
            ),
            (
                "xen 3 \(Self.abc) a 5\n",
                .manifestMalformed(
                    line: 1, "expected: role size sha256 name [unpacked-size unpacked-sha256]")
            ),
            (
                "xen 3 \(Self.abc) a x \(Self.abc)\n",
                .manifestMalformed(line: 1, "unpacked size is not a decimal number")
            ),
            (
                "xen 3 \(Self.abc) a\nkernel 1 \(Self.abc) b\n",
                .manifestMalformed(line: 2, "unknown role")
            ),
            ("xen 3x \(Self.abc) a\n", .manifestMalformed(line: 1, "size is not a decimal number")),
            (
                "xen 3 \(Self.abc.dropLast()) a\n",
                .manifestMalformed(line: 1, "digest is not 64 hex digits")
            ),
            (
                "xen 3 \(Self.abc) a 1 \(Self.abc) b\n",
                .manifestMalformed(line: 1, "more than six fields")
            ),
            (
                "dom0-kernel 3 \(Self.abc) a\n",
                .manifestMalformed(line: 1, "the first module must be xen")
            ),
            (
                "xen 3 \(Self.abc) a\n",
                .manifestMalformed(line: 1, "the second module must be dom0-kernel")
            ),
            (
                "xen 3 \(Self.abc) a\nxen 3 \(Self.abc) a\n",
                .manifestMalformed(line: 2, "xen must be the first module")
            ),
        ]
        for (text, error) in bad {
            withBuffer(text) { raw in
                #expect(throws: error, "\(text)") { _ = try Manifest(text: raw) }
            }
        }
    }
}
