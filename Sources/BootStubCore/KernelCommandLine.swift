// Command-line rules shared by the stub and Xen.
//
// A multiboot 1 loader (iPXE, QEMU, GRUB legacy) puts the image's file name
// first on every command line; GRUB 2 does not. Xen's cmdline_cook() strips
// the first word unless the loader's name contains "GRUB " followed by
// something other than '0'. The stub applies the same rule to what it
// receives, and, since it names itself "Proxenos bootstub" to Xen, puts a
// file name first on every command line it passes on.

/// Command-line helpers.
public enum KernelCommandLine {
    /// The arguments of `raw`: leading blanks removed and, unless `loaderName`
    /// is GRUB 2's, the first word (the image name) too.
    public static func arguments(
        _ raw: UnsafeRawBufferPointer, loaderName: UnsafeRawBufferPointer?
    ) -> UnsafeRawBufferPointer {
        var i = 0
        while i < raw.count && raw[i] == UInt8(ascii: " ") { i += 1 }
        if let name = loaderName, isGrub2(name) {
            return UnsafeRawBufferPointer(rebasing: raw[i...])
        }
        while i < raw.count && raw[i] != UInt8(ascii: " ") { i += 1 }
        while i < raw.count && raw[i] == UInt8(ascii: " ") { i += 1 }
        return UnsafeRawBufferPointer(rebasing: raw[i...])
    }

    /// Xen's loader_is_grub2(): "GRUB " present and not followed by '0'
    /// (GRUB legacy calls itself "GNU GRUB 0.97").
    public static func isGrub2(_ loaderName: UnsafeRawBufferPointer) -> Bool {
        guard let at = find(loaderName, "GRUB ") else { return false }
        return at + 5 >= loaderName.count || loaderName[at + 5] != UInt8(ascii: "0")
    }

    /// Whether `word` appears as a whole space-separated word.
    public static func hasWord(_ line: UnsafeRawBufferPointer, _ word: StaticString) -> Bool {
        var found = false
        forEachWord(line) { w in
            if bytesEqual(w, word) { found = true }
        }
        return found
    }

    /// Whether some word starts with `prefix` (e.g. "dom0_mem=").
    public static func hasOption(_ line: UnsafeRawBufferPointer, prefix: StaticString) -> Bool {
        var found = false
        forEachWord(line) { w in
            if startsWith(w, prefix) { found = true }
        }
        return found
    }

    /// Splits Xen's arguments at the first word `--`: Xen appends what
    /// follows to dom0's command line.
    public static func splitAtDom0Extra(_ line: UnsafeRawBufferPointer)
        -> (xen: UnsafeRawBufferPointer, dom0Extra: UnsafeRawBufferPointer?)
    {
        var i = 0
        while i < line.count {
            while i < line.count && line[i] == UInt8(ascii: " ") { i += 1 }
            let start = i
            while i < line.count && line[i] != UInt8(ascii: " ") { i += 1 }
            if i - start == 2 && line[start] == UInt8(ascii: "-")
                && line[start + 1] == UInt8(ascii: "-")
            {
                var xenEnd = start
                while xenEnd > 0 && line[xenEnd - 1] == UInt8(ascii: " ") { xenEnd -= 1 }
                var extra = i
                while extra < line.count && line[extra] == UInt8(ascii: " ") { extra += 1 }
                return (
                    UnsafeRawBufferPointer(rebasing: line[0..<xenEnd]),
                    UnsafeRawBufferPointer(rebasing: line[extra...])
                )
            }
        }
        return (line, nil)
    }

    /// dom0's memory when Xen's command line does not say:
    /// 256 MiB plus one eighth of usable RAM, but never more than half of it
    /// nor more than 4 GiB, in whole MiB. dom0 runs from its initramfs, so it
    /// needs a fixed base for the image and the daemons plus some room that
    /// grows with the number of guests the machine can hold; the rest is
    /// left to guests. 2 GiB → 511 MiB, 8 GiB → 1280 MiB, 1 GiB → 384 MiB,
    /// 512 MiB → 256 MiB.
    public static func dom0MemoryMiB(usableBytes: UInt64) -> UInt64 {
        let mib: UInt64 = 1 << 20
        let wanted = 256 * mib + usableBytes / 8
        let bounded = min(wanted, usableBytes / 2, 4096 * mib)
        return bounded / mib
    }

    /// Writes Xen's command line: `imageName`, the loader's arguments, and
    /// `dom0_mem=NM,max:NM` (fixed size, no ballooning) when the arguments
    /// have none, inserted before any `--` so that Xen, not dom0, reads it.
    /// Returns the MiB added, or nil when the admin's value was kept.
    @discardableResult
    public static func writeXenCommandLine<S: TextSink>(
        to sink: inout S, imageName: UnsafeRawBufferPointer, arguments: UnsafeRawBufferPointer,
        usableBytes: UInt64
    ) -> UInt64? {
        let parts = splitAtDom0Extra(arguments)
        sink.write(bytes: imageName)
        if parts.xen.count > 0 {
            sink.put(UInt8(ascii: " "))
            sink.write(bytes: parts.xen)
        }
        var added: UInt64?
        if !hasOption(parts.xen, prefix: "dom0_mem=") {
            let mib = dom0MemoryMiB(usableBytes: usableBytes)
            sink.write(" dom0_mem=")
            sink.write(decimal: mib)
            sink.write("M,max:")
            sink.write(decimal: mib)
            sink.write("M")
            added = mib
        }
        if let extra = parts.dom0Extra {
            sink.write(" --")
            if extra.count > 0 {
                sink.put(UInt8(ascii: " "))
                sink.write(bytes: extra)
            }
        }
        return added
    }

    private static func forEachWord(
        _ line: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void
    ) {
        var i = 0
        while i < line.count {
            while i < line.count && line[i] == UInt8(ascii: " ") { i += 1 }
            let start = i
            while i < line.count && line[i] != UInt8(ascii: " ") { i += 1 }
            if i > start { body(UnsafeRawBufferPointer(rebasing: line[start..<i])) }
        }
    }

    private static func startsWith(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool
    {
        prefix.withUTF8Buffer { p in
            guard bytes.count >= p.count else { return false }
            for i in 0..<p.count where bytes[i] != p[i] { return false }
            return true
        }
    }

    private static func find(_ bytes: UnsafeRawBufferPointer, _ needle: StaticString) -> Int? {
        needle.withUTF8Buffer { n in
            guard bytes.count >= n.count else { return nil }
            var at = 0
            while at + n.count <= bytes.count {
                var same = true
                for i in 0..<n.count where bytes[at + i] != n[i] { same = false }
                if same { return at }
                at += 1
            }
            return nil
        }
    }
}
