// The machine as the stub sees it: port I/O, CPUID, MSRs, the TSC and the
// PIT, through the few assembly routines in entry.S (efistub/entry.S for
// the UEFI stub, which shares this file). Embedded-only.

@_extern(c, "bs_outb") func bsOutb(_ port: UInt32, _ value: UInt32)
@_extern(c, "bs_inb") func bsInb(_ port: UInt32) -> UInt32
@_extern(c, "bs_cpuid") func bsCpuid(
    _ leaf: UInt32, _ subleaf: UInt32, _ out: UnsafeMutablePointer<UInt32>)
@_extern(c, "bs_rdmsr") func bsRdmsr(_ msr: UInt32) -> UInt64
@_extern(c, "bs_rdtsc") func bsRdtsc() -> UInt64
@_extern(c, "bs_halt") func bsHaltForever()

/// Stops the CPU for good (interrupts off, HLT).
func bsHalt() -> Never {
    while true { bsHaltForever() }
}

/// Byte output to an I/O port.
@inline(__always) func outb(_ port: UInt16, _ value: UInt8) {
    bsOutb(UInt32(port), UInt32(value))
}

/// Byte input from an I/O port.
@inline(__always) func inb(_ port: UInt16) -> UInt8 {
    UInt8(truncatingIfNeeded: bsInb(UInt32(port)))
}

/// COM1, the 16550 UART both stubs write their reports to.
enum COM1 {
    static let port: UInt16 = 0x3F8

    /// 115200 baud, 8n1, FIFOs on, no interrupts.
    static func initialize() {
        outb(port + 1, 0x00)  // no interrupts
        outb(port + 3, 0x80)  // DLAB on
        outb(port + 0, 0x01)  // divisor 1: 115200 baud
        outb(port + 1, 0x00)
        outb(port + 3, 0x03)  // 8 data bits, no parity, 1 stop bit
        outb(port + 2, 0xC7)  // FIFOs on and cleared
        outb(port + 4, 0x03)  // DTR, RTS
    }

    /// Sends one byte once the transmit holding register is free, but
    /// never waits forever: a missing UART must not stop the boot.
    static func write(_ byte: UInt8) {
        var spins = 0
        while inb(port + 5) & 0x20 == 0 && spins < 100_000 { spins += 1 }
        outb(port, byte)
    }
}

/// CPUID registers.
struct CPUIDResult {
    var eax: UInt32 = 0
    var ebx: UInt32 = 0
    var ecx: UInt32 = 0
    var edx: UInt32 = 0
}

func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> CPUIDResult {
    var r = CPUIDResult()
    withUnsafeMutableBytes(of: &r) { raw in
        // CPUIDResult is four consecutive UInt32s, the layout bs_cpuid writes.
        if let p = raw.baseAddress {
            bsCpuid(leaf, subleaf, p.assumingMemoryBound(to: UInt32.self))
        }
    }
    return r
}

/// Physical memory with paging off: address = pointer. Reads are refused
/// at address 0 (not a valid pointer in Swift) and past 4 GiB.
struct IdentityMemory: PhysicalMemory {
    func bytes(at address: UInt64, count: UInt64) -> UnsafeRawBufferPointer? {
        guard address != 0, count <= 0x7fff_ffff, address + count <= 0x1_0000_0000 else {
            return nil
        }
        guard let p = UnsafeRawPointer(bitPattern: UInt(address)) else { return nil }
        return UnsafeRawBufferPointer(start: p, count: Int(count))
    }

    /// Writable view of `[address, address + count)`.
    func mutableBytes(at address: UInt32, count: UInt32) -> UnsafeMutableRawBufferPointer? {
        guard address != 0, UInt64(address) + UInt64(count) <= 0x1_0000_0000,
            count <= 0x7fff_ffff, let p = UnsafeMutableRawPointer(bitPattern: UInt(address))
        else { return nil }
        return UnsafeMutableRawBufferPointer(start: p, count: Int(count))
    }
}

/// TSC cycles per millisecond, measured against PIT channel 2 over 20 ms
/// (the PIT counts at 1.193182 MHz on every PC); nil if the PIT's output
/// never rises, e.g. on a machine without a legacy PIT.
func calibrateTSC() -> UInt64? {
    let milliseconds: UInt64 = 20
    let latch: UInt16 = 23864  // 1193182 Hz × 20 ms
    // Gate channel 2 on, speaker off.
    outb(0x61, (inb(0x61) & ~0x02) | 0x01)
    // Channel 2, low then high byte, mode 0 (output rises at terminal count).
    outb(0x43, 0xB0)
    outb(0x42, UInt8(truncatingIfNeeded: latch))
    outb(0x42, UInt8(truncatingIfNeeded: latch >> 8))
    let start = bsRdtsc()
    var spins: UInt32 = 0
    while inb(0x61) & 0x20 == 0 {
        spins &+= 1
        if spins > 50_000_000 { return nil }
    }
    let cycles = bsRdtsc() &- start
    return cycles / milliseconds
}

/// What the CPU says about itself and its virtualisation extensions.
struct CPUReport {
    var vendor = InlineArray<12, UInt8>(repeating: 0)
    var brand = InlineArray<48, UInt8>(repeating: 0)
    var hasBrand = false
    var family: UInt32 = 0
    var model: UInt32 = 0
    var stepping: UInt32 = 0
    var hypervisorBit = false
    var vmx = false
    /// IA32_FEATURE_CONTROL (MSR 0x3A), read only when CPUID.1:ECX.VMX=1.
    var featureControl: UInt64 = 0
    var svm = false
    /// VM_CR (MSR 0xC0010114), read only when CPUID.80000001h:ECX.SVM=1.
    var vmCR: UInt64 = 0

    init() {
        let leaf0 = cpuid(0)
        store(leaf0.ebx, at: 0)
        store(leaf0.edx, at: 4)
        store(leaf0.ecx, at: 8)
        if leaf0.eax >= 1 {
            let leaf1 = cpuid(1)
            let baseFamily = (leaf1.eax >> 8) & 0xf
            family = baseFamily == 0xf ? baseFamily + ((leaf1.eax >> 20) & 0xff) : baseFamily
            model = (leaf1.eax >> 4) & 0xf
            if baseFamily == 0x6 || baseFamily == 0xf { model |= ((leaf1.eax >> 16) & 0xf) << 4 }
            stepping = leaf1.eax & 0xf
            hypervisorBit = leaf1.ecx & (1 << 31) != 0
            vmx = leaf1.ecx & (1 << 5) != 0
            // The MSR exists whenever VMX (or SMX) is reported; reading an
            // absent MSR would fault, and the stub has no IDT.
            if vmx { featureControl = bsRdmsr(0x3A) }
        }
        let maxExtended = cpuid(0x8000_0000).eax
        if maxExtended >= 0x8000_0001 {
            svm = cpuid(0x8000_0001).ecx & (1 << 2) != 0
            if svm { vmCR = bsRdmsr(0xC001_0114) }
        }
        if maxExtended >= 0x8000_0004 {
            hasBrand = true
            for i in 0..<3 {
                let r = cpuid(0x8000_0002 + UInt32(i))
                storeBrand(r.eax, at: i * 16)
                storeBrand(r.ebx, at: i * 16 + 4)
                storeBrand(r.ecx, at: i * 16 + 8)
                storeBrand(r.edx, at: i * 16 + 12)
            }
        }
    }

    private mutating func store(_ word: UInt32, at offset: Int) {
        for i in 0..<4 { vendor[offset + i] = UInt8(truncatingIfNeeded: word >> UInt32(8 * i)) }
    }

    private mutating func storeBrand(_ word: UInt32, at offset: Int) {
        for i in 0..<4 { brand[offset + i] = UInt8(truncatingIfNeeded: word >> UInt32(8 * i)) }
    }

    /// VT-x usable: IA32_FEATURE_CONTROL not locked (the OS may enable it),
    /// or locked with "VMX outside SMX" (bit 2) set.
    var vmxEnabled: Bool {
        let locked = featureControl & 1 != 0
        return !locked || featureControl & (1 << 2) != 0
    }

    /// AMD-V usable: VM_CR.SVMDIS (bit 4) clear.
    var svmEnabled: Bool { vmCR & (1 << 4) == 0 }

    func write<S: TextSink>(to out: inout S) {
        out.write("bootstub: cpu ")
        writeTrimmed(vendor, count: 12, to: &out)
        if hasBrand {
            out.write(" \"")
            writeTrimmed(brand, count: 48, to: &out)
            out.write("\"")
        }
        out.write(" family ")
        out.write(decimal: UInt64(family))
        out.write(" model ")
        out.write(decimal: UInt64(model))
        out.write(" stepping ")
        out.write(decimal: UInt64(stepping))
        if hypervisorBit { out.write(" (under a hypervisor)") }
        out.write("\nbootstub: VT-x ")
        if !vmx {
            out.write("absent (CPUID.1:ECX.VMX=0)")
        } else {
            out.write(vmxEnabled ? "present, enabled" : "present, DISABLED by firmware")
            out.write(" (IA32_FEATURE_CONTROL=")
            out.write(hex: featureControl, digits: 8)
            out.write(featureControl & 1 != 0 ? ": locked" : ": unlocked")
            out.write(featureControl & 4 != 0 ? ", VMX outside SMX on)" : ", VMX outside SMX off)")
        }
        out.write("\nbootstub: AMD-V ")
        if !svm {
            out.write("absent (CPUID.80000001h:ECX.SVM=0)")
        } else {
            out.write(svmEnabled ? "present, enabled" : "present, DISABLED by firmware")
            out.write(" (VM_CR=")
            out.write(hex: vmCR, digits: 8)
            out.write(svmEnabled ? ": SVMDIS clear)" : ": SVMDIS set)")
        }
        out.write("\n")
    }

    private func writeTrimmed<let n: Int, S: TextSink>(
        _ bytes: InlineArray<n, UInt8>, count: Int, to out: inout S
    ) {
        var start = 0
        while start < count && bytes[start] == UInt8(ascii: " ") { start += 1 }
        var end = count
        while end > start && (bytes[end - 1] == 0 || bytes[end - 1] == UInt8(ascii: " ")) {
            end -= 1
        }
        var i = start
        while i < end {
            let b = bytes[i]
            out.put(b >= 0x20 && b < 0x7f ? b : UInt8(ascii: "?"))
            i += 1
        }
    }
}
