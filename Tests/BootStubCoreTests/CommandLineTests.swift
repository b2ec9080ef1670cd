import BootStubCore
import Testing

@Suite struct CommandLineTests {
    static func args(_ line: String, loader: String?) -> String {
        withBuffer(line) { raw in
            let cooked: UnsafeRawBufferPointer
            if let loader {
                cooked = withBuffer(loader) { KernelCommandLine.arguments(raw, loaderName: $0) }
            } else {
                cooked = KernelCommandLine.arguments(raw, loaderName: nil)
            }
            return String(decoding: cooked, as: UTF8.self)
        }
    }

    @Test func stripsImageNameLikeXenDoes() {
        #expect(Self.args("bootstub.elf insecure", loader: "qemu") == "insecure")
        #expect(Self.args("  /boot/xen   console=com1", loader: "iPXE 1.21") == "console=com1")
        #expect(Self.args("xen", loader: nil) == "")
        #expect(Self.args("insecure", loader: "GRUB 2.06-13+deb12u2") == "insecure")
        #expect(Self.args("  a b", loader: "GRUB 2.06") == "a b")
        // GRUB legacy passes the image name.
        #expect(Self.args("/xen.gz a", loader: "GNU GRUB 0.97") == "a")
    }

    @Test func wordsAndOptions() {
        withBuffer("foo insecure=0 insecurex dom0_mem=1G") { line in
            #expect(!KernelCommandLine.hasWord(line, "insecure"))
            #expect(KernelCommandLine.hasOption(line, prefix: "dom0_mem="))
        }
        withBuffer("a  insecure") { #expect(KernelCommandLine.hasWord($0, "insecure")) }
        withBuffer("") { #expect(!KernelCommandLine.hasWord($0, "insecure")) }
    }

    @Test func dom0MemoryRule() {
        let mib: UInt64 = 1 << 20
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 2048 * mib) == 512)
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 0x9_fc00 + 0x7fee_0000) == 511)
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 1024 * mib) == 384)
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 512 * mib) == 256)
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 8192 * mib) == 1280)
        #expect(KernelCommandLine.dom0MemoryMiB(usableBytes: 64 * 1024 * mib) == 4096)
    }

    static func xenLine(_ args: String, usable: UInt64 = 2048 << 20) -> (String, UInt64?) {
        var sink = StringSink()
        let added = withBuffer("xen-4.17-amd64") { name in
            withBuffer(args) {
                KernelCommandLine.writeXenCommandLine(
                    to: &sink, imageName: name, arguments: $0, usableBytes: usable)
            }
        }
        return (sink.string, added)
    }

    @Test func addsDom0MemBeforeTheDom0Separator() {
        #expect(
            Self.xenLine("console=com1 com1=115200,8n1") == (
                "xen-4.17-amd64 console=com1 com1=115200,8n1 dom0_mem=512M,max:512M", 512
            ))
        #expect(Self.xenLine("") == ("xen-4.17-amd64 dom0_mem=512M,max:512M", 512))
        #expect(
            Self.xenLine("loglvl=all -- quiet") == (
                "xen-4.17-amd64 loglvl=all dom0_mem=512M,max:512M -- quiet", 512
            ))
        #expect(
            Self.xenLine("dom0_mem=1G loglvl=all") == ("xen-4.17-amd64 dom0_mem=1G loglvl=all", nil)
        )
        // dom0_mem after "--" belongs to dom0, not Xen: Xen still gets one.
        #expect(
            Self.xenLine("a -- dom0_mem=3") == (
                "xen-4.17-amd64 a dom0_mem=512M,max:512M -- dom0_mem=3", 512
            ))
    }
}
