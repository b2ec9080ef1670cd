// Checking the loader's modules against the manifest, and the report lines
// that say so. Network boot is unauthenticated: whatever TFTP/HTTP delivered
// is only trusted once its digest matches the one built into the stub.

/// The outcome for one module position.
public enum ModuleVerdict: Equatable, Sendable {
    /// Digest and size match the manifest.
    case ok
    /// Digest and size match the manifest's decompressed form (the loader
    /// gunzipped the module, as GRUB's module2 does by default).
    case okUnpacked
    /// The module's digest differs from the manifest's.
    case mismatch(actual: SHA256Digest)
    /// The manifest names a module the loader did not pass.
    case missing
    /// The loader passed a module the manifest does not name.
    case unexpected(actual: SHA256Digest)
    /// The module's memory could not be read.
    case unreadable

    /// Whether booting may go on.
    public var isAcceptable: Bool { self == .ok || self == .okUnpacked }
}

/// Module verification against the manifest.
public enum Verification {
    /// The verdict for module position `index`.
    public static func check<M: PhysicalMemory>(
        index: Int, manifest: Manifest, modules: BoundedList<8, BootModule>, memory: M
    ) -> ModuleVerdict {
        let entry = manifest.entries.at(index)
        guard let module = modules.at(index) else { return .missing }
        guard let bytes = memory.bytes(at: UInt64(module.start), count: UInt64(module.size)) else {
            return .unreadable
        }
        let digest = SHA256.hash(bytes)
        guard let expected = entry else { return .unexpected(actual: digest) }
        if digest == expected.digest && UInt64(module.size) == expected.size { return .ok }
        if let unpacked = expected.unpackedDigest, digest == unpacked,
            UInt64(module.size) == expected.unpackedSize
        {
            return .okUnpacked
        }
        return .mismatch(actual: digest)
    }

    /// Writes the report line(s) for module position `index`, each starting
    /// with "bootstub: " and ending with a newline.
    public static func writeReport<S: TextSink>(
        to sink: inout S, index: Int, verdict: ModuleVerdict, manifest: Manifest,
        modules: BoundedList<8, BootModule>
    ) {
        let entry = manifest.entries.at(index)
        let module = modules.at(index)
        switch verdict {
        case .ok, .okUnpacked: sink.write("bootstub: module ")
        case .mismatch: sink.write("bootstub: MISMATCH module ")
        case .missing: sink.write("bootstub: MISSING module ")
        case .unexpected: sink.write("bootstub: UNEXPECTED module ")
        case .unreadable: sink.write("bootstub: UNREADABLE module ")
        }
        sink.write(decimal: UInt64(index))
        if let e = entry {
            sink.write(" ")
            sink.write(e.role.name)
            sink.write(" ")
            sink.write(bytes: manifest.name(of: e))
        }
        switch verdict {
        case .ok, .okUnpacked:
            sink.write(" ")
            sink.write(decimal: UInt64(module?.size ?? 0))
            sink.write(
                verdict == .ok
                    ? " bytes: sha256 ok\n" : " bytes: sha256 ok (gunzipped by the loader)\n")
            return
        case .missing:
            sink.write(": the loader passed only ")
            sink.write(decimal: UInt64(modules.count))
            sink.write(" modules\n")
        case .unexpected:
            sink.write(": ")
            sink.write(decimal: UInt64(module?.size ?? 0))
            sink.write(" bytes, not in the manifest\n")
        case .mismatch, .unreadable:
            sink.write(": ")
            sink.write(decimal: UInt64(module?.size ?? 0))
            sink.write(" bytes (manifest: ")
            sink.write(decimal: entry?.size ?? 0)
            sink.write(" bytes)\n")
        }
        sink.write("bootstub:   expected sha256 ")
        if let e = entry { e.digest.write(to: &sink) } else { sink.write("none") }
        sink.write("\nbootstub:   actual   sha256 ")
        switch verdict {
        case .mismatch(let actual), .unexpected(let actual): actual.write(to: &sink)
        case .missing: sink.write("none (module absent)")
        case .unreadable: sink.write("none (module memory unreadable)")
        case .ok, .okUnpacked: break
        }
        sink.write("\n")
    }
}

/// A text sink that can set warnings apart (white on red on a screen).
public protocol HighlightingSink: TextSink {
    /// Starts (true) or ends (false) highlighted text.
    mutating func highlight(_ on: Bool)
}

extension Verification {
    /// Checks every module position against the manifest and writes each
    /// verdict, failures highlighted; returns the number of failures and
    /// the bytes hashed.
    public static func checkAll<M: PhysicalMemory, S: HighlightingSink>(
        manifest: Manifest, modules: BoundedList<8, BootModule>, memory: M, to out: inout S
    ) -> (failures: Int, hashedBytes: UInt64) {
        var failures = 0
        var hashedBytes: UInt64 = 0
        let positions = max(manifest.entries.count, modules.count)
        for i in 0..<positions {
            let verdict = check(index: i, manifest: manifest, modules: modules, memory: memory)
            if let m = modules.at(i) { hashedBytes += UInt64(m.size) }
            if !verdict.isAcceptable {
                failures += 1
                out.highlight(true)
            }
            writeReport(to: &out, index: i, verdict: verdict, manifest: manifest, modules: modules)
            out.highlight(false)
        }
        return (failures, hashedBytes)
    }

    /// After `failures` failed checks: writes the refusal, or with
    /// `insecure` the warning three times; returns whether to boot on.
    public static func decide<S: HighlightingSink>(failures: Int, insecure: Bool, to out: inout S)
        -> Bool
    {
        guard failures > 0 else { return true }
        out.highlight(true)
        if !insecure {
            out.write("bootstub: REFUSING TO BOOT: ")
            out.write(decimal: UInt64(failures))
            out.write(" module(s) failed verification")
            out.write(" (add \"insecure\" to the stub's command line to boot anyway)\n")
            return false
        }
        for _ in 0..<3 {
            out.write("bootstub: WARNING: INSECURE BOOT: ")
            out.write(decimal: UInt64(failures))
            out.write(" module(s) failed verification; booting anyway because of \"insecure\"\n")
        }
        out.highlight(false)
        return true
    }
}
