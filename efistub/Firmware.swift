// The UEFI services the stub calls, at their offsets in the system table,
// boot services and protocol structures (UEFI 2.10, x86_64). The function
// types are C functions: built for a Windows triple, C means the Microsoft
// x64 convention UEFI uses. Embedded-only.

typealias Pointer = UnsafeMutableRawPointer
typealias HandleProtocolFn =
    @convention(c) (Pointer?, UnsafeRawPointer?, UnsafeMutablePointer<Pointer?>?) -> UInt
typealias AllocatePagesFn =
    @convention(c) (UInt32, UInt32, UInt, UnsafeMutablePointer<UInt64>?) -> UInt
typealias FreePagesFn = @convention(c) (UInt64, UInt) -> UInt
typealias GetMemoryMapFn =
    @convention(c) (
        UnsafeMutablePointer<UInt>?, Pointer?, UnsafeMutablePointer<UInt>?,
        UnsafeMutablePointer<UInt>?,
        UnsafeMutablePointer<UInt32>?
    ) -> UInt
typealias LoadImageFn =
    @convention(c) (
        UInt8, Pointer?, UnsafeRawPointer?, UnsafeRawPointer?, UInt, UnsafeMutablePointer<Pointer?>?
    ) -> UInt
typealias StartImageFn = @convention(c) (Pointer?, UnsafeMutablePointer<UInt>?, Pointer?) -> UInt
typealias SetWatchdogTimerFn = @convention(c) (UInt, UInt64, UInt, UnsafeRawPointer?) -> UInt
typealias GetVariableFn =
    @convention(c) (
        UnsafeRawPointer?, UnsafeRawPointer?, UnsafeMutablePointer<UInt32>?,
        UnsafeMutablePointer<UInt>?,
        Pointer?
    ) -> UInt
typealias OutputStringFn = @convention(c) (Pointer?, UnsafeRawPointer?) -> UInt
typealias SetAttributeFn = @convention(c) (Pointer?, UInt) -> UInt
typealias OpenVolumeFn = @convention(c) (Pointer?, UnsafeMutablePointer<Pointer?>?) -> UInt
typealias FileOpenFn =
    @convention(c) (
        Pointer?, UnsafeMutablePointer<Pointer?>?, UnsafeRawPointer?, UInt64, UInt64
    ) -> UInt
typealias FileCloseFn = @convention(c) (Pointer?) -> UInt
typealias FileReadFn = @convention(c) (Pointer?, UnsafeMutablePointer<UInt>?, Pointer?) -> UInt
typealias FileGetInfoFn =
    @convention(c) (
        Pointer?, UnsafeRawPointer?, UnsafeMutablePointer<UInt>?, Pointer?
    ) -> UInt

/// An EFI_GUID: Data1-3 little-endian, Data4's eight bytes as one
/// little-endian word (16 bytes, the firmware's layout).
struct GUID {
    var a: UInt32
    var b: UInt16
    var c: UInt16
    var d: UInt64

    static let loadedImage = GUID(a: 0x5B1B_31A1, b: 0x9562, c: 0x11D2, d: 0x3B72_69C9_A000_3F8E)
    static let simpleFileSystem = GUID(
        a: 0x964E_5B22, b: 0x6459, c: 0x11D2, d: 0x3B72_69C9_A000_398E)
    static let devicePath = GUID(a: 0x0957_6E91, b: 0x6D3F, c: 0x11D2, d: 0x3B72_69C9_A000_398E)
    static let fileInfo = GUID(a: 0x0957_6E92, b: 0x6D3F, c: 0x11D2, d: 0x3B72_69C9_A000_398E)
    static let globalVariable = GUID(
        a: 0x8BE4_DF61, b: 0x93CA, c: 0x11D2, d: 0x8C2B_0398_E000_0DAA)
}

let efiSuccess: UInt = 0
let efiBufferTooSmall: UInt = 0x8000_0000_0000_0005

/// The system table and boot services the stub uses.
struct Firmware {
    let imageHandle: Pointer
    let systemTable: Pointer
    let bootServices: Pointer
    let runtimeServices: Pointer

    init?(imageHandle: Pointer?, systemTable: Pointer?) {
        guard let imageHandle, let systemTable,
            let bs = systemTable.load(fromByteOffset: 96, as: Pointer?.self),
            let rs = systemTable.load(fromByteOffset: 88, as: Pointer?.self)
        else { return nil }
        self.imageHandle = imageHandle
        self.systemTable = systemTable
        bootServices = bs
        runtimeServices = rs
    }

    /// SIMPLE_TEXT_OUTPUT_PROTOCOL of the console.
    var conOut: Pointer? { systemTable.load(fromByteOffset: 64, as: Pointer?.self) }
    /// The firmware vendor, UCS-2.
    var vendor: UnsafeRawPointer? {
        UnsafeRawPointer(systemTable.load(fromByteOffset: 24, as: Pointer?.self))
    }
    var firmwareRevision: UInt32 { systemTable.load(fromByteOffset: 32, as: UInt32.self) }

    private func service<F>(_ offset: Int, _: F.Type) -> F {
        bootServices.load(fromByteOffset: offset, as: F.self)
    }

    func handleProtocol(_ handle: Pointer?, _ guid: GUID) -> Pointer? {
        var g = guid
        var interface: Pointer? = nil
        let status = withUnsafePointer(to: &g) {
            service(152, HandleProtocolFn.self)(handle, UnsafeRawPointer($0), &interface)
        }
        return status == efiSuccess ? interface : nil
    }

    /// Pages below 4 GiB (the module list holds 32-bit addresses), as
    /// EfiLoaderData.
    func allocatePagesBelow4G(bytes: UInt64) -> UInt64? {
        var address: UInt64 = 0xFFFF_FFFF
        let pages = UInt((bytes + 0xFFF) >> 12)
        let status = service(40, AllocatePagesFn.self)(1, 2, pages, &address)
        return status == efiSuccess ? address : nil
    }

    func freePages(_ address: UInt64, bytes: UInt64) {
        _ = service(48, FreePagesFn.self)(address, UInt((bytes + 0xFFF) >> 12))
    }

    /// GetMemoryMap into `buffer`: (bytes used, descriptor size) or the status.
    func memoryMap(into buffer: UnsafeMutableRawBufferPointer) -> (Int, Int, UInt) {
        var size = UInt(buffer.count)
        var key: UInt = 0
        var descriptorSize: UInt = 0
        var version: UInt32 = 0
        let status = service(56, GetMemoryMapFn.self)(
            &size, buffer.baseAddress, &key, &descriptorSize, &version)
        return (Int(size), Int(descriptorSize), status)
    }

    func loadImage(devicePath: UnsafeRawPointer, image: UnsafeRawBufferPointer) -> (Pointer?, UInt)
    {
        var handle: Pointer? = nil
        let status = service(200, LoadImageFn.self)(
            0, imageHandle, devicePath, image.baseAddress, UInt(image.count), &handle)
        return (handle, status)
    }

    func startImage(_ handle: Pointer?) -> UInt {
        service(208, StartImageFn.self)(handle, nil, nil)
    }

    /// Turns off the boot manager's five-minute watchdog: verification
    /// under an emulator can take longer, and Xen does not re-arm it.
    func disableWatchdog() {
        _ = service(256, SetWatchdogTimerFn.self)(0, 0, 0, nil)
    }

    /// A global (EFI_GLOBAL_VARIABLE) variable's bytes into `buffer`.
    func globalVariable(_ name: UnsafeRawPointer, into buffer: UnsafeMutableRawBufferPointer)
        -> Int?
    {
        var g = GUID.globalVariable
        var size = UInt(buffer.count)
        let getVariable = runtimeServices.load(fromByteOffset: 72, as: GetVariableFn.self)
        let status = withUnsafePointer(to: &g) {
            getVariable(name, UnsafeRawPointer($0), nil, &size, buffer.baseAddress)
        }
        return status == efiSuccess ? Int(size) : nil
    }
}

/// An open directory or file (EFI_FILE_PROTOCOL).
struct File {
    let interface: Pointer

    /// The root of the volume on `device`, or the EFI status.
    static func root(of device: Pointer?, _ firmware: Firmware) -> File? {
        guard let fs = firmware.handleProtocol(device, .simpleFileSystem) else { return nil }
        var root: Pointer? = nil
        let status = fs.load(fromByteOffset: 8, as: OpenVolumeFn.self)(fs, &root)
        guard status == efiSuccess, let root else { return nil }
        return File(interface: root)
    }

    /// Opens `path` (NUL-terminated UCS-2) for reading.
    func open(_ path: UnsafeRawPointer) -> (File?, UInt) {
        var handle: Pointer? = nil
        let status = interface.load(fromByteOffset: 8, as: FileOpenFn.self)(
            interface, &handle, path, 1, 0)
        guard status == efiSuccess, let handle else { return (nil, status) }
        return (File(interface: handle), status)
    }

    func close() { _ = interface.load(fromByteOffset: 16, as: FileCloseFn.self)(interface) }

    /// Reads up to `buffer.count` bytes; returns the count or the status.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> (Int, UInt) {
        var size = UInt(buffer.count)
        let status = interface.load(fromByteOffset: 32, as: FileReadFn.self)(
            interface, &size, buffer.baseAddress)
        return (Int(size), status)
    }

    /// EFI_FILE_INFO.FileSize, or the status.
    func size() -> (UInt64?, UInt) {
        var info = InlineArray<512, UInt8>(repeating: 0)
        var g = GUID.fileInfo
        var length: UInt = 512
        let status = withUnsafeMutableBytes(of: &info) { raw in
            withUnsafePointer(to: &g) {
                interface.load(fromByteOffset: 64, as: FileGetInfoFn.self)(
                    interface, UnsafeRawPointer($0), &length, raw.baseAddress)
            }
        }
        guard status == efiSuccess, length >= 16 else { return (nil, status) }
        return (
            withUnsafeBytes(of: &info) { $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self) },
            status
        )
    }
}
