/// Everything that can stop the boot stub before it hands over to Xen,
/// in words the admin at the serial console can act on.
public enum BootStubError: Error, Equatable, Sendable {
    /// The stub was not entered by a multiboot loader (EAX held `magic`).
    case notMultiboot(magic: UInt32)
    /// The loader's information block is unreadable or inconsistent.
    case bootInfoMalformed(StaticString)
    /// The loader passed more modules than the stub can track.
    case tooManyModules(limit: Int)
    /// The loader's memory map has more entries than the stub can track.
    case tooManyMemoryRegions(limit: Int)
    /// The manifest built into the stub does not parse (1-based line).
    case manifestMalformed(line: Int, StaticString)
    /// The Xen module is not a loadable 32-bit x86 ELF image.
    case xenImageInvalid(StaticString)
    /// No usable memory below 4 GiB is free for module `index`.
    case noRoomForModule(index: Int, size: UInt64)
    /// The information block handed to Xen does not fit the stub's buffer.
    case handoffAreaFull
    /// A UEFI boot service failed (the UEFI stub): what, and its EFI status.
    case firmware(StaticString, status: UInt64)

    /// Writes the admin-facing explanation to `sink`.
    public func write<S: TextSink>(to sink: inout S) {
        switch self {
        case .notMultiboot(let magic):
            sink.write("not started by a multiboot loader (EAX=")
            sink.write(hex: UInt64(magic))
            sink.write("); boot it with GRUB's multiboot2 or iPXE's multiboot")
        case .bootInfoMalformed(let what):
            sink.write("the loader's boot information is malformed: ")
            sink.write(what)
        case .tooManyModules(let limit):
            sink.write("the loader passed more than ")
            sink.write(decimal: UInt64(limit))
            sink.write(" modules; pass only xen, the dom0 kernel and the initramfs")
        case .tooManyMemoryRegions(let limit):
            sink.write("the firmware memory map has more than ")
            sink.write(decimal: UInt64(limit))
            sink.write(" entries")
        case .manifestMalformed(let line, let what):
            sink.write("the built-in manifest is malformed at line ")
            sink.write(decimal: UInt64(line))
            sink.write(": ")
            sink.write(what)
            sink.write("; rebuild the stub")
        case .xenImageInvalid(let what):
            sink.write("module 0 is not a loadable Xen ELF32 image: ")
            sink.write(what)
        case .noRoomForModule(let index, let size):
            sink.write("no free usable memory below 4 GiB for module ")
            sink.write(decimal: UInt64(index))
            sink.write(" (")
            sink.write(decimal: size)
            sink.write(" bytes)")
        case .handoffAreaFull:
            sink.write("the multiboot information for Xen does not fit the stub's buffer;")
            sink.write(" shorten the command lines")
        case .firmware(let what, let status):
            sink.write("the firmware failed to ")
            sink.write(what)
            sink.write(" (EFI status ")
            sink.write(hex: status, digits: 16)
            sink.write(")")
        }
    }

    public static func == (lhs: BootStubError, rhs: BootStubError) -> Bool {
        // StaticString is not Equatable: compare the rendered messages.
        var l = ByteCollector()
        var r = ByteCollector()
        lhs.write(to: &l)
        rhs.write(to: &r)
        return l.equals(r)
    }
}

/// Collects rendered text into a fixed buffer for comparisons; overflow is
/// counted, not stored.
struct ByteCollector: TextSink {
    var bytes = InlineArray<256, UInt8>(repeating: 0)
    var count = 0

    mutating func put(_ byte: UInt8) {
        if count < 256 { bytes[count] = byte }
        count += 1
    }

    func equals(_ other: ByteCollector) -> Bool {
        guard count == other.count else { return false }
        for i in 0..<min(count, 256) where bytes[i] != other.bytes[i] { return false }
        return true
    }
}

#if !hasFeature(Embedded)
    extension BootStubError: CustomStringConvertible {
        public var description: String {
            var sink = StringSink()
            write(to: &sink)
            return sink.string
        }
    }

    /// A text sink collecting into a Swift string (host only).
    public struct StringSink: TextSink {
        /// The bytes written so far.
        public var bytes: [UInt8] = []
        /// An empty sink.
        public init() {}
        public mutating func put(_ byte: UInt8) { bytes.append(byte) }
        /// The text written so far.
        public var string: String { String(decoding: bytes, as: UTF8.self) }
    }
#endif
