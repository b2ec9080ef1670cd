// The boot stub's flow: read the loader's information, report the hardware,
// verify every module against the built-in manifest, move modules out of
// Xen's way, load Xen's ELF image, build its multiboot 1 information and
// jump. Embedded-only; the decisions live in BootStubCore.

@_extern(c, "bs_image_start") func bsImageStart() -> UInt32
@_extern(c, "bs_image_end") func bsImageEnd() -> UInt32
@_extern(c, "bs_enter_kernel") func bsJump(_ entry: UInt32, _ magic: UInt32, _ info: UInt32)

/// Jumps to `entry` with EAX = `magic` and EBX = `info`; never returns.
func bsEnterKernel(_ entry: UInt32, _ magic: UInt32, _ info: UInt32) -> Never {
    bsJump(entry, magic, info)
    bsHalt()
}

/// Where the multiboot 1 information for Xen is built: inside the stub's
/// own .bss, which the relocation plan treats as reserved.
nonisolated(unsafe) var handoffArea = InlineArray<8192, UInt8>(repeating: 0)

/// The name the stub gives itself to Xen. It does not contain "GRUB ",
/// so Xen strips the first word of every command line, which is why the
/// stub puts a file name there.
let loaderNameForXen: StaticString = "Proxenos bootstub"

@_cdecl("bootstub_multiboot1")
func bootstubMultiboot1(_ magic: UInt32, _ info: UInt32) {
    let entered = bsRdtsc()
    var out = Console()
    out.write("bootstub: Proxenos boot stub, entered through multiboot1\n")
    run(magic == Multiboot1.bootloaderMagic ? .multiboot1 : nil, magic, info, entered, &out)
}

@_cdecl("bootstub_multiboot2")
func bootstubMultiboot2(_ magic: UInt32, _ info: UInt32) {
    let entered = bsRdtsc()
    var out = Console()
    out.write("bootstub: Proxenos boot stub, entered through multiboot2\n")
    run(magic == Multiboot2.bootloaderMagic ? .multiboot2 : nil, magic, info, entered, &out)
}

func run(
    _ proto: BootProtocol?, _ magic: UInt32, _ infoAddress: UInt32, _ entered: UInt64,
    _ out: inout Console
) {
    do throws(BootStubError) {
        guard let proto else { throw .notMultiboot(magic: magic) }
        try boot(proto, infoAddress, entered, &out)
    } catch {
        out.attribute = 0x4F
        out.write("bootstub: FATAL: ")
        error.write(to: &out)
        out.write("\n")
    }
    out.attribute = 0x4F
    out.write("bootstub: halted\n")
    bsHalt()
}

func writeDuration(_ cycles: UInt64, _ perMs: UInt64?, _ out: inout Console) {
    out.write(duration: cycles, cyclesPerMs: perMs)
}

/// Writes `[start, end)` as `0xSTART-0xEND` (the shared format).
func writeRange(_ start: UInt64, _ end: UInt64, _ out: inout Console) {
    out.write(rangeFrom: start, to: end)
}

func boot(_ proto: BootProtocol, _ infoAddress: UInt32, _ entered: UInt64, _ out: inout Console)
    throws(BootStubError)
{
    let memory = IdentityMemory()
    let info: BootInfo
    switch proto {
    case .multiboot1: info = try Multiboot1.parse(at: infoAddress, memory: memory)
    case .multiboot2: info = try Multiboot2.parse(at: infoAddress, memory: memory)
    }
    let loaderName = info.loaderName.flatMap { memory.bytes(of: $0) }
    out.write("bootstub: loader \"")
    if let loaderName { out.write(bytes: loaderName) } else { out.write("unknown") }
    out.write("\"")
    var insecure = false
    if let cmd = info.commandLine, let raw = memory.bytes(of: cmd) {
        let args = KernelCommandLine.arguments(raw, loaderName: loaderName)
        insecure = KernelCommandLine.hasWord(args, "insecure")
        out.write(", command line \"")
        out.write(bytes: args)
        out.write("\"")
    }
    out.write("\n")

    CPUReport().write(to: &out)

    // Memory.
    let usable = info.usableBytes
    MemoryReport.write(info.memoryMap, to: &out)
    guard usable > 0 else { throw .bootInfoMalformed("no usable memory in the memory map") }

    let perMs = calibrateTSC()
    TimerReport.write(cyclesPerMillisecond: perMs, to: &out)

    // Verification.
    // A string literal: its bytes live in .rodata for the stub's lifetime.
    let manifest = try Manifest(
        text: UnsafeRawBufferPointer(
            start: builtInManifest.utf8Start, count: builtInManifest.utf8CodeUnitCount))
    out.write("bootstub: verifying ")
    out.write(decimal: UInt64(info.modules.count))
    out.write(" modules against the built-in manifest (")
    out.write(decimal: UInt64(manifest.entries.count))
    out.write(" entries)\n")
    let checkStart = bsRdtsc()
    let (failures, hashedBytes) = Verification.checkAll(
        manifest: manifest, modules: info.modules, memory: memory, to: &out)
    out.write("bootstub: checked ")
    out.write(decimal: hashedBytes >> 10)
    out.write(" KiB in ")
    writeDuration(bsRdtsc() &- checkStart, perMs, &out)
    out.write("\n")
    guard Verification.decide(failures: failures, insecure: insecure, to: &out) else { return }

    try handOver(info, memory, loaderName, manifest, entered, perMs, &out)
}

func handOver(
    _ info: BootInfo, _ memory: IdentityMemory, _ loaderName: UnsafeRawBufferPointer?,
    _ manifest: Manifest, _ entered: UInt64, _ perMs: UInt64?, _ out: inout Console
) throws(BootStubError) {
    guard let xenModule = info.modules.at(0),
        let xenImage = memory.bytes(at: UInt64(xenModule.start), count: UInt64(xenModule.size))
    else { throw .xenImageInvalid("the loader passed no module") }
    let plan = try ELF32.plan(xenImage)
    let footprint = plan.footprint
    out.write("bootstub: xen image ")
    writeRange(footprint.start, footprint.end, &out)
    out.write(", entry ")
    out.write(hex: UInt64(plan.entry))
    out.write("\n")

    let stubImage = PhysicalRange(start: UInt64(bsImageStart()), end: UInt64(bsImageEnd()))
    guard !footprint.overlaps(stubImage) else {
        throw .xenImageInvalid("it would overwrite the stub itself")
    }
    guard info.isUsable(footprint) else {
        throw .xenImageInvalid("its load address is not usable RAM in the memory map")
    }

    // Nothing may be written into the stub itself (code, .bss with the
    // stack and the handoff area) or into Xen's footprint while a module
    // still lies there.
    var reserved = BoundedList<8, PhysicalRange>(filler: PhysicalRange(start: 0, end: 0))
    reserved.append(stubImage)
    reserved.append(
        PhysicalRange(start: footprint.start & ~0xfff, end: (footprint.end + 0xfff) & ~0xfff))
    let moves = try ModuleRelocation.plan(
        modules: info.modules, reserved: reserved, memoryMap: info.memoryMap)

    // Build Xen's multiboot 1 information from the loader's strings before
    // anything is moved (the loader's strings may lie in Xen's footprint).
    let infoAddress = try withUnsafeMutableBytes(of: &handoffArea) {
        area throws(BootStubError) -> UInt32 in
        guard let base = area.baseAddress,
            var builder = Multiboot1Builder(
                buffer: area, physicalAddress: UInt32(UInt(bitPattern: base)))
        else { throw .handoffAreaFull }
        let limits = info.memoryLimitsKiB
        builder.setMemoryLimits(lowerKiB: limits.lower, upperKiB: limits.upper)
        for i in 0..<info.memoryMap.count {
            if let r = info.memoryMap.at(i) { builder.addRegion(r) }
        }
        builder.beginString()
        builder.write(loaderNameForXen)
        builder.setLoaderName(builder.endString())

        builder.beginString()
        let xenName = manifest.entries.at(0).map { manifest.name(of: $0) }
        let xenArgs = arguments(of: xenModule, memory, loaderName)
        let added = KernelCommandLine.writeXenCommandLine(
            to: &builder, imageName: xenName ?? UnsafeRawBufferPointer(start: nil, count: 0),
            arguments: xenArgs, usableBytes: info.usableBytes)
        let xenCommandLine = builder.endString()
        builder.setCommandLine(xenCommandLine)
        out.write("bootstub: xen command line \"")
        if let s = memory.cString(at: xenCommandLine), let b = memory.bytes(of: s) {
            out.write(bytes: b)
        }
        out.write("\"\n")
        if let mib = added {
            out.write("bootstub: dom0_mem=")
            out.write(decimal: mib)
            out.write(
                "M added (256 MiB + 1/8 of usable memory, at most half of it, at most 4 GiB)\n")
        }

        for i in 1..<max(info.modules.count, 1) {
            guard let m = info.modules.at(i), let start = moves.at(i) else { continue }
            builder.beginString()
            if let e = manifest.entries.at(i) {
                builder.write(bytes: manifest.name(of: e))
            } else {
                builder.write("module")
            }
            let args = arguments(of: m, memory, loaderName)
            if args.count > 0 {
                builder.put(UInt8(ascii: " "))
                builder.write(bytes: args)
            }
            builder.addModule(start: start, end: start + m.size, string: builder.endString())
        }
        return try builder.finish()
    }

    // Move modules out of the way; destinations overlap no current module.
    for i in 0..<info.modules.count {
        guard let m = info.modules.at(i), let start = moves.at(i), start != m.start else {
            continue
        }
        out.write("bootstub: moving module ")
        out.write(decimal: UInt64(i))
        out.write(" ")
        writeRange(UInt64(m.start), UInt64(m.end), &out)
        out.write(" to ")
        out.write(hex: UInt64(start))
        out.write("\n")
        guard let from = memory.bytes(at: UInt64(m.start), count: UInt64(m.size)),
            let to = memory.mutableBytes(at: start, count: m.size), let source = from.baseAddress,
            let destination = to.baseAddress
        else { throw .noRoomForModule(index: i, size: UInt64(m.size)) }
        destination.copyMemory(from: source, byteCount: Int(m.size))
    }

    // Load Xen from wherever its module now is.
    guard let xenStart = moves.at(0),
        let image = memory.bytes(at: UInt64(xenStart), count: UInt64(xenModule.size)),
        let imageBase = image.baseAddress
    else { throw .xenImageInvalid("its module vanished") }
    for i in 0..<plan.segments.count {
        guard let s = plan.segments.at(i),
            let target = memory.mutableBytes(at: s.physicalAddress, count: s.memorySize),
            let targetBase = target.baseAddress
        else { continue }
        targetBase.copyMemory(from: imageBase + Int(s.fileOffset), byteCount: Int(s.fileSize))
        (targetBase + Int(s.fileSize)).initializeMemory(
            as: UInt8.self, repeating: 0, count: Int(s.memorySize - s.fileSize))
    }

    out.write("bootstub: jumping to xen at ")
    out.write(hex: UInt64(plan.entry))
    out.write(" with multiboot1 information at ")
    out.write(hex: UInt64(infoAddress))
    out.write(", ")
    writeDuration(bsRdtsc() &- entered, perMs, &out)
    out.write(" after stub entry\n")
    bsEnterKernel(plan.entry, Multiboot1.bootloaderMagic, infoAddress)
}

/// A module's arguments, without the image name a multiboot 1 loader puts
/// first (the same rule as Xen's).
func arguments(
    of module: BootModule, _ memory: IdentityMemory, _ loaderName: UnsafeRawBufferPointer?
) -> UnsafeRawBufferPointer {
    guard let s = module.commandLine, let raw = memory.bytes(of: s) else {
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }
    return KernelCommandLine.arguments(raw, loaderName: loaderName)
}
