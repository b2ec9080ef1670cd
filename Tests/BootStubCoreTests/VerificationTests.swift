import BootStubCore
import Testing

@Suite struct VerificationTests {
    // Three modules in one buffer at 0x100000: "abc", "" and "abd".
    static let memoryBytes: [UInt8] = Array("abcabd".utf8)
    static let manifestText = """
        xen 3 \(ManifestTests.abc) xen-4.17-amd64
        dom0-kernel 0 \(ManifestTests.empty) vmlinux
        initrd 3 \(ManifestTests.abc) initrd.gz
        """

    static func modules(_ count: Int) -> BoundedList<8, BootModule> {
        var list = BoundedList<8, BootModule>(
            filler: BootModule(start: 0, end: 0, commandLine: nil))
        let all = [
            (0x10_0000, 0x10_0003), (0x10_0003, 0x10_0003), (0x10_0003, 0x10_0006),
            (0x10_0000, 0x10_0006),
        ]
        for (s, e) in all.prefix(count) {
            list.append(BootModule(start: UInt32(s), end: UInt32(e), commandLine: nil))
        }
        return list
    }

    static func run(_ moduleCount: Int) throws -> (verdicts: [ModuleVerdict], report: String) {
        try withBuffer(manifestText) { raw in
            let manifest = try Manifest(text: raw)
            let mods = modules(moduleCount)
            return withMemory(memoryBytes, at: 0x10_0000) { memory in
                var sink = StringSink()
                var verdicts: [ModuleVerdict] = []
                for i in 0..<max(manifest.entries.count, mods.count) {
                    let v = Verification.check(
                        index: i, manifest: manifest, modules: mods, memory: memory)
                    Verification.writeReport(
                        to: &sink, index: i, verdict: v, manifest: manifest, modules: mods)
                    verdicts.append(v)
                }
                return (verdicts, sink.string)
            }
        }
    }

    @Test func tamperedModuleIsNamedWithBothDigests() throws {
        let (verdicts, report) = try Self.run(3)
        #expect(verdicts[0] == .ok && verdicts[1] == .ok)
        #expect(verdicts[2] == .mismatch(actual: sha256(Array("abd".utf8))))
        #expect(
            report == """
                bootstub: module 0 xen xen-4.17-amd64 3 bytes: sha256 ok
                bootstub: module 1 dom0-kernel vmlinux 0 bytes: sha256 ok
                bootstub: MISMATCH module 2 initrd initrd.gz: 3 bytes (manifest: 3 bytes)
                bootstub:   expected sha256 \(ManifestTests.abc)
                bootstub:   actual   sha256 \(hex(sha256(Array("abd".utf8))))

                """)
    }

    @Test func missingModule() throws {
        let (verdicts, report) = try Self.run(2)
        #expect(verdicts.last == .missing)
        #expect(
            report.hasSuffix(
                """
                bootstub: MISSING module 2 initrd initrd.gz: the loader passed only 2 modules
                bootstub:   expected sha256 \(ManifestTests.abc)
                bootstub:   actual   sha256 none (module absent)

                """))
    }

    @Test func unexpectedModule() throws {
        let (verdicts, report) = try Self.run(4)
        #expect(verdicts.count == 4)
        #expect(verdicts[3] == .unexpected(actual: sha256(Array("abcabd".utf8))))
        #expect(
            report.contains(
                "bootstub: UNEXPECTED module 3: 6 bytes, not in the manifest\nbootstub:   expected sha256 none\n"
            ))
        #expect(!verdicts[3].isAcceptable)
    }
}

@Suite struct UnpackedVerificationTests {
    @Test func acceptsTheDecompressedFormOfAGzipModule() throws {
        // The initrd's manifest line carries the digest of "abd" as its
        // unpacked form: a loader that gunzipped it hands over "abd".
        let abd = hex(sha256(Array("abd".utf8)))
        let text = """
            xen 3 \(ManifestTests.abc) xen-4.17-amd64
            dom0-kernel 0 \(ManifestTests.empty) vmlinux
            initrd 40 \(ManifestTests.abc) initrd.gz 3 \(abd)
            """
        try withBuffer(text) { raw in
            let manifest = try Manifest(text: raw)
            #expect(manifest.entries.at(2)?.unpackedSize == 3)
            let mods = VerificationTests.modules(3)
            withMemory(VerificationTests.memoryBytes, at: 0x10_0000) { memory in
                let v = Verification.check(
                    index: 2, manifest: manifest, modules: mods, memory: memory)
                #expect(v == .okUnpacked && v.isAcceptable)
                var sink = StringSink()
                Verification.writeReport(
                    to: &sink, index: 2, verdict: v, manifest: manifest, modules: mods)
                #expect(
                    sink.string
                        == "bootstub: module 2 initrd initrd.gz 3 bytes: sha256 ok (gunzipped by the loader)\n"
                )
                // The packed digest still matches "abc" at module 0's place.
                #expect(
                    Verification.check(index: 0, manifest: manifest, modules: mods, memory: memory)
                        == .ok)
            }
        }
    }
}
