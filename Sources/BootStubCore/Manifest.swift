// The manifest names, in boot order, every module the stub accepts: its
// role, its size and its SHA-256. bootstub/gen-manifest.sh writes it at image
// build time from `openssl dgst -sha256`; the stub carries it as a string
// literal and parses it at run time with the code below, which the host tests
// exercise as well.
//
// Format: one module per line, fields separated by spaces:
//
//     <role> <size in bytes> <sha256, 64 hex digits> <file name> [<unpacked size> <unpacked sha256>]
//
// The two optional fields describe a gzip file's content: GRUB's module2
// gunzips modules unless told --nounzip, so the stub may receive either form
// and accepts both.
//
// `#` starts a comment line; blank lines are ignored. Roles are `xen`,
// `dom0-kernel`, `initrd` and (UEFI stub only) `config`. Modules are identified by position: the first
// line describes the loader's first module, and so on. The first must be
// `xen` and the second `dom0-kernel`; an `initrd` may follow.

/// What a module is for.
public enum ModuleRole: Equatable, Sendable {
    /// The hypervisor (an ELF32 image the stub loads).
    case xen
    /// dom0's kernel, handed to Xen as its first module.
    case dom0Kernel
    /// dom0's initramfs, handed to Xen as its second module.
    case initrd
    /// Xen's EFI configuration file (xen.cfg): the UEFI stub checks it
    /// because it names the command lines and the files Xen loads.
    case config

    /// The word used in the manifest and in the stub's report.
    public var name: StaticString {
        switch self {
        case .xen: return "xen"
        case .dom0Kernel: return "dom0-kernel"
        case .initrd: return "initrd"
        case .config: return "config"
        }
    }

    /// Parses a manifest role word.
    public init?(word: UnsafeRawBufferPointer) {
        if bytesEqual(word, "xen") {
            self = .xen
        } else if bytesEqual(word, "dom0-kernel") {
            self = .dom0Kernel
        } else if bytesEqual(word, "initrd") {
            self = .initrd
        } else if bytesEqual(word, "config") {
            self = .config
        } else {
            return nil
        }
    }
}

/// One expected module.
public struct ManifestEntry: Equatable, Sendable {
    /// What the module is for.
    public var role: ModuleRole
    /// Its size in bytes at build time.
    public var size: UInt64
    /// Its SHA-256 at build time.
    public var digest: SHA256Digest
    /// Byte offset of its file name in the manifest text.
    public var nameOffset: Int
    /// Length of its file name.
    public var nameLength: Int
    /// For a gzip file: size of its decompressed content.
    public var unpackedSize: UInt64? = nil
    /// For a gzip file: SHA-256 of its decompressed content.
    public var unpackedDigest: SHA256Digest? = nil
}

/// The most modules a manifest (and a boot) may name.
public let maximumModules = 8

/// A parsed manifest; it refers to (does not copy) its text.
public struct Manifest {
    /// The manifest text.
    public let text: UnsafeRawBufferPointer
    /// The entries in boot order.
    public private(set) var entries = BoundedList<8, ManifestEntry>(
        filler: ManifestEntry(
            role: .xen, size: 0, digest: SHA256Digest(words: .init(repeating: 0)),
            nameOffset: 0, nameLength: 0))

    /// Parses `text`; it must stay valid while the manifest is used.
    public init(text: UnsafeRawBufferPointer) throws(BootStubError) {
        self.text = text
        var lineStart = 0
        var lineNumber = 0
        while lineStart < text.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < text.count && text[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            try parseLine(from: lineStart, to: lineEnd, number: lineNumber)
            lineStart = lineEnd + 1
        }
        guard entries.at(0)?.role == .xen else {
            throw .manifestMalformed(line: lineNumber, "the first module must be xen")
        }
        guard entries.at(1)?.role == .dom0Kernel else {
            throw .manifestMalformed(line: lineNumber, "the second module must be dom0-kernel")
        }
    }

    private mutating func parseLine(from start: Int, to end: Int, number: Int)
        throws(BootStubError)
    {
        var fields = BoundedList<6, PhysicalRange>(filler: PhysicalRange(start: 0, end: 0))
        var i = start
        while i < end {
            while i < end && isBlank(text[i]) { i += 1 }
            if i >= end { break }
            if fields.isEmpty && text[i] == UInt8(ascii: "#") { return }
            let fieldStart = i
            while i < end && !isBlank(text[i]) { i += 1 }
            guard fields.append(PhysicalRange(start: UInt64(fieldStart), end: UInt64(i))) else {
                throw .manifestMalformed(line: number, "more than six fields")
            }
        }
        if fields.isEmpty { return }
        guard fields.count == 4 || fields.count == 6, let roleField = fields.at(0),
            let sizeField = fields.at(1), let digestField = fields.at(2),
            let nameField = fields.at(3)
        else {
            throw .manifestMalformed(
                line: number, "expected: role size sha256 name [unpacked-size unpacked-sha256]")
        }
        guard let role = ModuleRole(word: slice(roleField)) else {
            throw .manifestMalformed(line: number, "unknown role")
        }
        guard let size = parseDecimal(slice(sizeField)) else {
            throw .manifestMalformed(line: number, "size is not a decimal number")
        }
        guard let digest = SHA256Digest(hex: slice(digestField)) else {
            throw .manifestMalformed(line: number, "digest is not 64 hex digits")
        }
        if role == .xen && !entries.isEmpty {
            throw .manifestMalformed(line: number, "xen must be the first module")
        }
        var entry = ManifestEntry(
            role: role, size: size, digest: digest, nameOffset: Int(nameField.start),
            nameLength: Int(nameField.length))
        if let unpackedSizeField = fields.at(4), let unpackedDigestField = fields.at(5) {
            guard let unpackedSize = parseDecimal(slice(unpackedSizeField)) else {
                throw .manifestMalformed(line: number, "unpacked size is not a decimal number")
            }
            guard let unpackedDigest = SHA256Digest(hex: slice(unpackedDigestField)) else {
                throw .manifestMalformed(line: number, "unpacked digest is not 64 hex digits")
            }
            entry.unpackedSize = unpackedSize
            entry.unpackedDigest = unpackedDigest
        }
        guard entries.append(entry) else {
            throw .manifestMalformed(line: number, "more than 8 modules")
        }
    }

    private func slice(_ range: PhysicalRange) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: text[Int(range.start)..<Int(range.end)])
    }

    /// The file name of `entry`.
    public func name(of entry: ManifestEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(
            rebasing: text[entry.nameOffset..<entry.nameOffset + entry.nameLength])
    }
}

@inline(__always)
func isBlank(_ c: UInt8) -> Bool {
    c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r")
}

/// Whether `bytes` spell exactly `word`.
func bytesEqual(_ bytes: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
    word.withUTF8Buffer { w in
        guard w.count == bytes.count else { return false }
        for i in 0..<w.count where w[i] != bytes[i] { return false }
        return true
    }
}

/// A decimal number of at most 19 digits, or nil.
func parseDecimal(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
    guard bytes.count > 0, bytes.count <= 19 else { return nil }
    var value: UInt64 = 0
    for c in bytes {
        guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + UInt64(c - UInt8(ascii: "0"))
    }
    return value
}
