// Report lines both stubs print the same way (BIOS and UEFI), so that the
// admin and the smoke tests read one format.

extension TextSink {
    /// Writes `[start, end)` as `0xSTART-0xEND`, 8 digits below 4 GiB, 16 above.
    public mutating func write(rangeFrom start: UInt64, to end: UInt64) {
        write(hex: start, digits: start > 0xffff_ffff ? 16 : 8)
        write("-")
        write(hex: end, digits: end > 0xffff_ffff ? 16 : 8)
    }
}

extension TextSink {
    /// Writes `T ms (C TSC cycles)`, or the cycles alone without a calibration.
    public mutating func write(duration cycles: UInt64, cyclesPerMs perMs: UInt64?) {
        if let perMs, perMs > 0 {
            write(decimal: cycles / perMs)
            write(" ms (")
        } else {
            write("(no PIT calibration: ")
        }
        write(decimal: cycles)
        write(" TSC cycles)")
    }
}

/// The memory report: total usable memory and one line per map entry.
/// The TSC line both stubs print after the memory map.
public enum TimerReport {
    /// Writes "bootstub: TSC N MHz ..." for `cyclesPerMillisecond`, or says
    /// the PIT did not count (`nil`).
    public static func write<S: TextSink>(cyclesPerMillisecond perMs: UInt64?, to out: inout S) {
        out.write("bootstub: TSC ")
        if let perMs {
            out.write(decimal: perMs / 1000)
            out.write(" MHz (calibrated against the PIT over 20 ms)\n")
        } else {
            out.write("not calibrated: the PIT did not count; times in cycles only\n")
        }
    }
}

public enum MemoryReport {
    /// Writes "bootstub: memory N MiB usable, map of K entries:" and the entries.
    public static func write<S: TextSink>(_ map: BoundedList<64, MemoryRegion>, to out: inout S) {
        var usable: UInt64 = 0
        for i in 0..<map.count {
            if let r = map.at(i), r.isUsable { usable &+= r.length }
        }
        out.write("bootstub: memory ")
        out.write(decimal: usable >> 20)
        out.write(" MiB usable, map of ")
        out.write(decimal: UInt64(map.count))
        out.write(" entries:\n")
        for i in 0..<map.count {
            guard let r = map.at(i) else { continue }
            out.write("bootstub:   ")
            out.write(rangeFrom: r.base, to: r.range.end)
            switch r.type {
            case 1: out.write(" usable\n")
            case 3: out.write(" ACPI reclaimable\n")
            case 4: out.write(" ACPI NVS\n")
            case 5: out.write(" bad\n")
            default: out.write(" reserved\n")
            }
        }
    }
}
