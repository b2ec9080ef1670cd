// The UEFI stub's flow: find its own directory on the boot device, report
// the hardware, read every module the manifest names from that directory,
// verify them, and start Xen's EFI image from the verified bytes. Xen then
// reads xen.cfg and the dom0 files from the same directory itself (see
// docs/ARCHITECTURE.md, "UEFI boot"). Embedded-only; the decisions live in
// BootStubCore.

/// GetMemoryMap's output (OVMF: ~100 descriptors of 48 bytes).
nonisolated(unsafe) var memoryMapBuffer = InlineArray<16384, UInt8>(repeating: 0)
/// The full device path of xen.efi that LoadImage gets.
nonisolated(unsafe) var xenPathBuffer = InlineArray<1024, UInt8>(repeating: 0)

@_cdecl("efi_main")
func efiMain(_ imageHandle: UnsafeMutableRawPointer?, _ systemTable: UnsafeMutableRawPointer?)
    -> UInt
{
    let entered = bsRdtsc()
    guard let firmware = Firmware(imageHandle: imageHandle, systemTable: systemTable) else {
        return 0x8000_0000_0000_0002  // EFI_INVALID_PARAMETER
    }
    firmware.disableWatchdog()
    var out = EFIConsole(conOut: firmware.conOut, ownSerial: !consoleHasSerial(firmware))
    out.write("bootstub: Proxenos boot stub, entered through UEFI\n")
    do throws(BootStubError) {
        try boot(firmware, entered, &out)
    } catch {
        out.highlight(true)
        out.write("bootstub: FATAL: ")
        error.write(to: &out)
        out.write("\n")
    }
    // Returning would let the boot manager try the next boot option,
    // which might boot the appliance unverified: stop here instead.
    out.highlight(true)
    out.write("bootstub: halted\n")
    out.flush()
    bsHalt()
}

/// Whether the ConOut variable names a UART among the console's devices.
func consoleHasSerial(_ firmware: Firmware) -> Bool {
    // L"ConOut"
    var name = InlineArray<7, UInt16>(repeating: 0)
    name[0] = 0x43
    name[1] = 0x6F
    name[2] = 0x6E
    name[3] = 0x4F
    name[4] = 0x75
    name[5] = 0x74
    var value = InlineArray<1024, UInt8>(repeating: 0)
    return withUnsafeBytes(of: &name) { n in
        withUnsafeMutableBytes(of: &value) { v in
            guard let base = n.baseAddress, let size = firmware.globalVariable(base, into: v) else {
                return false
            }
            return EFIDevicePath.hasUART(UnsafeRawBufferPointer(rebasing: v[0..<size]))
        }
    }
}

/// The bytes of the device path at `address`, end node included.
func devicePath(at address: UInt64) -> UnsafeRawBufferPointer? {
    guard let p = UnsafeRawPointer(bitPattern: UInt(address)) else { return nil }
    var length = 0
    while length < 4096 {
        let type = p.load(fromByteOffset: length, as: UInt8.self)
        let subtype = p.load(fromByteOffset: length + 1, as: UInt8.self)
        let nodeLength =
            Int(p.load(fromByteOffset: length + 2, as: UInt8.self))
            | Int(p.load(fromByteOffset: length + 3, as: UInt8.self)) << 8
        guard nodeLength >= 4 else { return nil }
        length += nodeLength
        if type == EFIDevicePath.endType && subtype == EFIDevicePath.endEntire {
            return UnsafeRawBufferPointer(start: p, count: length)
        }
    }
    return nil
}

func boot(_ firmware: Firmware, _ entered: UInt64, _ out: inout EFIConsole) throws(BootStubError) {
    guard let imageProtocol = firmware.handleProtocol(firmware.imageHandle, .loadedImage) else {
        throw .firmware("give the stub its loaded image protocol", status: 0)
    }
    let image = try EFILoadedImage(
        UnsafeRawBufferPointer(start: imageProtocol, count: EFILoadedImage.size))

    // Firmware and load options, as the BIOS stub names its loader.
    var text = InlineArray<256, UInt8>(repeating: 0)
    out.write("bootstub: loader \"UEFI ")
    withUnsafeMutableBytes(of: &text) { t in
        if let vendor = firmware.vendor,
            let n = UCS2.ascii(UnsafeRawBufferPointer(start: vendor, count: 128), into: t)
        {
            out.write(bytes: UnsafeRawBufferPointer(rebasing: t[0..<n]))
        }
    }
    out.write(" ")
    out.write(decimal: UInt64(firmware.firmwareRevision >> 16))
    out.write(".")
    out.write(decimal: UInt64(firmware.firmwareRevision & 0xFFFF))
    out.write("\"")
    var insecure = false
    withUnsafeMutableBytes(of: &text) { t in
        guard image.loadOptionsSize > 0,
            let p = UnsafeRawPointer(bitPattern: UInt(image.loadOptions)),
            let n = UCS2.ascii(
                UnsafeRawBufferPointer(start: p, count: Int(image.loadOptionsSize)), into: t)
        else { return }
        let options = UnsafeRawBufferPointer(rebasing: t[0..<n])
        insecure = KernelCommandLine.hasWord(options, "insecure")
        out.write(", command line \"")
        out.write(bytes: options)
        out.write("\"")
    }
    out.write("\n")

    // The stub's own directory, where the modules lie.
    var directory = InlineArray<256, UInt8>(repeating: 0)
    guard let filePath = devicePath(at: image.filePath) else {
        throw .bootInfoMalformed("the stub's file path is not a device path")
    }
    let directoryLength = try withUnsafeMutableBytes(of: &directory) {
        d throws(BootStubError) -> Int in try EFIDevicePath.directory(ofFile: filePath, into: d)
    }

    CPUReport().write(to: &out)

    let (mapSize, descriptorSize, mapStatus) = withUnsafeMutableBytes(of: &memoryMapBuffer) {
        firmware.memoryMap(into: $0)
    }
    guard mapStatus == efiSuccess else {
        throw .firmware("return its memory map", status: UInt64(mapStatus))
    }
    let map = try withUnsafeBytes(of: &memoryMapBuffer) { m throws(BootStubError) in
        try EFIMemoryMap.regions(
            UnsafeRawBufferPointer(rebasing: m[0..<mapSize]), descriptorSize: descriptorSize)
    }
    MemoryReport.write(map, to: &out)

    let perMs = calibrateTSC()
    TimerReport.write(cyclesPerMillisecond: perMs, to: &out)

    let manifest = try Manifest(
        text: UnsafeRawBufferPointer(
            start: builtInManifest.utf8Start, count: builtInManifest.utf8CodeUnitCount))
    guard let root = File.root(of: Pointer(bitPattern: UInt(image.deviceHandle)), firmware) else {
        throw .firmware("open the boot device's file system", status: 0)
    }

    // Read every file the manifest names, in its order; the first that
    // cannot be read ends the list (the verdicts then say MISSING).
    out.write("bootstub: reading ")
    out.write(decimal: UInt64(manifest.entries.count))
    out.write(" modules from \\")
    withUnsafeBytes(of: &directory) {
        out.write(bytes: UnsafeRawBufferPointer(rebasing: $0[0..<directoryLength]))
    }
    out.write(" on the boot device\n")
    var modules = BoundedList<8, BootModule>(filler: BootModule(start: 0, end: 0, commandLine: nil))
    let readStart = bsRdtsc()
    var readBytes: UInt64 = 0
    for i in 0..<manifest.entries.count {
        guard let entry = manifest.entries.at(i) else { break }
        let name = manifest.name(of: entry)
        guard
            let module = withUnsafeBytes(
                of: &directory,
                { d in
                    readModule(
                        root, UnsafeRawBufferPointer(rebasing: d[0..<directoryLength]), name,
                        firmware, &out)
                })
        else { break }
        modules.append(module)
        readBytes += UInt64(module.size)
    }
    root.close()
    out.write("bootstub: read ")
    out.write(decimal: readBytes >> 10)
    out.write(" KiB in ")
    out.write(duration: bsRdtsc() &- readStart, cyclesPerMs: perMs)
    out.write("\n")

    out.write("bootstub: verifying ")
    out.write(decimal: UInt64(modules.count))
    out.write(" modules against the built-in manifest (")
    out.write(decimal: UInt64(manifest.entries.count))
    out.write(" entries)\n")
    let checkStart = bsRdtsc()
    let (failures, hashedBytes) = Verification.checkAll(
        manifest: manifest, modules: modules, memory: IdentityMemory(), to: &out)
    out.write("bootstub: checked ")
    out.write(decimal: hashedBytes >> 10)
    out.write(" KiB in ")
    out.write(duration: bsRdtsc() &- checkStart, cyclesPerMs: perMs)
    out.write("\n")
    guard Verification.decide(failures: failures, insecure: insecure, to: &out) else { return }

    try startXen(
        firmware, image, manifest, modules, &directory, directoryLength, entered, perMs, &out)
}

/// Reads `\DIRECTORY\NAME` into pages below 4 GiB; nil (and a line saying
/// why) if it cannot.
func readModule(
    _ root: File, _ directory: UnsafeRawBufferPointer, _ name: UnsafeRawBufferPointer,
    _ firmware: Firmware, _ out: inout EFIConsole
) -> BootModule? {
    var path = InlineArray<300, UInt16>(repeating: 0)
    var n = 0
    for c in directory where n < 296 {
        path[n] = UInt16(c)
        n += 1
    }
    if n > 0 {
        path[n] = 0x5C
        n += 1
    }
    for c in name where n < 298 {
        path[n] = UInt16(c)
        n += 1
    }
    path[n] = 0
    let (opened, status) = withUnsafeBytes(of: &path) { root.open($0.baseAddress!) }
    guard let file = opened else {
        out.write("bootstub: cannot open ")
        out.write(bytes: name)
        out.write(": EFI status ")
        out.write(hex: UInt64(status), digits: 16)
        out.write("\n")
        return nil
    }
    defer { file.close() }
    let (size, infoStatus) = file.size()
    guard let size, size < 0xFFFF_0000 else {
        out.write("bootstub: cannot size ")
        out.write(bytes: name)
        out.write(": EFI status ")
        out.write(hex: UInt64(infoStatus), digits: 16)
        out.write("\n")
        return nil
    }
    guard let address = firmware.allocatePagesBelow4G(bytes: max(size, 1)),
        let base = UnsafeMutableRawPointer(bitPattern: UInt(address))
    else {
        out.write("bootstub: no memory below 4 GiB for ")
        out.write(bytes: name)
        out.write("\n")
        return nil
    }
    var done: UInt64 = 0
    while done < size {
        // 4 MiB a call: some firmware file systems fail on larger reads.
        let chunk = min(size - done, 4 << 20)
        let (got, readStatus) = file.read(
            into: UnsafeMutableRawBufferPointer(start: base + Int(done), count: Int(chunk)))
        guard readStatus == efiSuccess, got > 0 else {
            out.write("bootstub: cannot read ")
            out.write(bytes: name)
            out.write(": EFI status ")
            out.write(hex: UInt64(readStatus), digits: 16)
            out.write("\n")
            firmware.freePages(address, bytes: max(size, 1))
            return nil
        }
        done += UInt64(got)
    }
    return BootModule(start: UInt32(address), end: UInt32(address + size), commandLine: nil)
}

func startXen(
    _ firmware: Firmware, _ image: EFILoadedImage, _ manifest: Manifest,
    _ modules: BoundedList<8, BootModule>, _ directory: inout InlineArray<256, UInt8>,
    _ directoryLength: Int, _ entered: UInt64, _ perMs: UInt64?, _ out: inout EFIConsole
) throws(BootStubError) {
    guard let xen = modules.at(0), let xenEntry = manifest.entries.at(0),
        let xenBytes = IdentityMemory().bytes(at: UInt64(xen.start), count: UInt64(xen.size))
    else { throw .xenImageInvalid("the stub read no Xen image") }
    let deviceHandle = Pointer(bitPattern: UInt(image.deviceHandle))
    guard let devicePathProtocol = firmware.handleProtocol(deviceHandle, .devicePath),
        let device = devicePath(at: UInt64(UInt(bitPattern: devicePathProtocol)))
    else { throw .firmware("give the boot device's device path", status: 0) }
    let pathLength = try withUnsafeBytes(of: &directory) { d throws(BootStubError) -> Int in
        try withUnsafeMutableBytes(of: &xenPathBuffer) { p throws(BootStubError) -> Int in
            try EFIDevicePath.appendFile(
                device: device, directory: UnsafeRawBufferPointer(rebasing: d[0..<directoryLength]),
                name: manifest.name(of: xenEntry), into: p)
        }
    }
    _ = pathLength

    // Xen reads its configuration and the dom0 files again itself; only
    // its own image is started from the verified bytes.
    for i in 1..<max(modules.count, 1) {
        if let m = modules.at(i) {
            firmware.freePages(UInt64(m.start), bytes: UInt64(max(m.size, 1)))
        }
    }
    out.write("bootstub: starting ")
    out.write(bytes: manifest.name(of: xenEntry))
    out.write(" (")
    out.write(decimal: UInt64(xen.size))
    out.write(" bytes, the verified copy) through LoadImage and StartImage, ")
    out.write(duration: bsRdtsc() &- entered, cyclesPerMs: perMs)
    out.write(" after stub entry\n")
    out.flush()
    let (handle, status) = withUnsafeBytes(of: &xenPathBuffer) {
        firmware.loadImage(devicePath: $0.baseAddress!, image: xenBytes)
    }
    guard status == efiSuccess, let handle else {
        throw .firmware("load Xen's EFI image", status: UInt64(status))
    }
    firmware.freePages(UInt64(xen.start), bytes: UInt64(xen.size))
    let exit = firmware.startImage(handle)
    throw .firmware("start Xen, which returned", status: UInt64(exit))
}
