import CLinux
import LinuxSystem
import SystemPackage
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// How a backing can discard (the `discard-*` nodes).
public struct BlockDiscardSupport: Sendable, Equatable {
    /// `discard-granularity`, bytes.
    public var granularity: UInt32
    /// `discard-alignment`, bytes.
    public var alignment: UInt32
    /// `discard-secure`: the backing can discard securely (BLKSECDISCARD).
    public var secure: Bool

    public init(granularity: UInt32, alignment: UInt32 = 0, secure: Bool = false) {
        self.granularity = granularity
        self.alignment = alignment
        self.secure = secure
    }
}

/// Where a disk's sectors live. The data path calls it from its worker
/// thread only, one call at a time, in ring order; every call returns once
/// the operation is done (``write(_:at:)``: in the backing's cache, so
/// visible to every later read and to a successor process;
/// ``flush()``: on stable storage).
public protocol BlockStorage: AnyObject {
    /// Size in 512-byte sectors.
    var sectorCount: UInt64 { get }
    /// `physical-sector-size`, bytes.
    var physicalSectorSize: Int { get }
    /// Opened read-only: every write is refused before it gets here.
    var isReadOnly: Bool { get }
    /// nil when the backing cannot discard.
    var discardSupport: BlockDiscardSupport? { get }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64)
        throws(BlockStorageError)
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockStorageError)
    /// Makes every write that returned before this call stable.
    func flush() throws(BlockStorageError)
    /// Discards `count` bytes at `offset` (reads return zeros afterwards
    /// for files; for devices, whatever the device does).
    func discard(at offset: UInt64, count: UInt64, secure: Bool) throws(BlockStorageError)
}

/// A failure of the backing, reported to the guest as an I/O error.
public struct BlockStorageError: Error, Equatable, Sendable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Errno

    public init(_ operation: String, path: String, errno: Errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// The backing does not implement the operation (the guest gets
    /// `BLKIF_RSP_EOPNOTSUPP` and stops asking).
    public var isNotSupported: Bool {
        errno == .notSupported || errno == .notSupportedOnSocket || errno == .noFunction
    }

    public var description: String { "\(operation) \(path): \(errno)" }
}

/// A disk as xend describes it in the backend directory: `type` (`file`,
/// `tap`, `phy`), `params` and `mode`.
public struct BlockBacking: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `file:` and `tap:aio:`: a regular file.
        case file
        /// `phy:`: a block device.
        case device
    }

    public var kind: Kind
    /// The absolute path opened.
    public var path: String
    public var writable: Bool

    public init(kind: Kind, path: String, writable: Bool) {
        self.kind = kind
        self.path = path
        self.writable = writable
    }

    /// Reads xend's nodes: `phy` params may leave out `/dev/` (`hdc`, as in
    /// xm); `tap` params are `aio:PATH` (the only tap driver served); mode
    /// `w` or `w!` writable, `r` read-only.
    public init(type: String, params: String, mode: String) throws(BlockBackendError) {
        switch mode {
        case "w", "w!": writable = true
        case "r": writable = false
        default: throw .configuration("mode '\(mode)' is not r, w or w!")
        }
        switch type {
        case "file":
            kind = .file
            path = params
        case "tap", "tap2":
            guard params.hasPrefix("aio:") else {
                throw .configuration("tap params '\(params)': only tap:aio: is served")
            }
            kind = .file
            path = String(params.dropFirst(4))
        case "phy":
            kind = .device
            path = params.hasPrefix("/") ? params : "/dev/\(params)"
        default:
            throw .configuration("disk type '\(type)' is not file, tap or phy")
        }
        guard path.hasPrefix("/"), path.count > 1 else {
            throw .configuration("disk path '\(path)' is not absolute")
        }
    }
}

/// A regular file or a block device, read and written with
/// `pread`/`pwrite` through the page cache and made stable with
/// `fdatasync`: the first engine, synchronous on the ring's worker thread
/// (one system call per request, in ring order).
public final class FileStorage: BlockStorage {
    public let backing: BlockBacking
    public let sectorCount: UInt64
    public let physicalSectorSize: Int
    public var isReadOnly: Bool { !backing.writable }
    public let discardSupport: BlockDiscardSupport?
    /// Whether I/O bypasses dom0's page cache (O_DIRECT): block devices
    /// with 512-byte logical blocks and files on file systems that take
    /// sector-aligned direct I/O, where every blkif request is aligned
    /// (sector multiples, from a page-aligned bounce buffer at sector
    /// offsets). Other files go through the page cache (tmpfs has no
    /// O_DIRECT on dom0's kernel).
    public let isDirect: Bool
    private var descriptor: FileDescriptor

    // linux/fs.h: _IO(0x12, 119), _IO(0x12, 125), _IOR(0x12, 114, size_t).
    static let blkDiscard: UInt = 0x1277
    static let blkSecureDiscard: UInt = 0x127D
    static let blkGetSize64: UInt = 0x8008_1272

    /// Opens the backing (read-only unless writable) and reads its size
    /// and abilities. A file must be regular and a device a block device.
    public init(_ backing: BlockBacking) throws(BlockBackendError) {
        self.backing = backing
        let flags = (backing.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC
        let path = backing.path
        let opened = retryingSyscall { clinux_open(path, flags, 0) }
        guard case .success(let fd) = opened else {
            if case .failure(let errno) = opened { throw .backing(path: path, "open", errno) }
            throw .backing(path: path, "open", .ioError)
        }
        descriptor = FileDescriptor(rawValue: fd)
        do throws(BlockBackendError) {
            var status = stat()
            guard fstat(fd, &status) == 0 else {
                throw .backing(path: path, "fstat", Errno(rawValue: Glibc.errno))
            }
            let type = status.st_mode & S_IFMT
            switch backing.kind {
            case .file:
                guard type == S_IFREG else {
                    throw .configuration("\(path) is not a regular file (file: and tap:aio: disks)")
                }
                sectorCount = UInt64(max(0, status.st_size)) / UInt64(Blkif.sectorSize)
                physicalSectorSize = Blkif.sectorSize
                if status.st_size >= 1024, let direct = Self.openDirect(path, flags) {
                    _ = Glibc.close(fd)
                    descriptor = FileDescriptor(rawValue: direct)
                    isDirect = true
                } else {
                    isDirect = false
                }
                // Hole punching keeps the size; every Linux file system we
                // back disks with (tmpfs, ext4, xfs) has it, and a refusal
                // at run time answers the guest "not supported".
                discardSupport =
                    backing.writable
                    ? BlockDiscardSupport(
                        granularity: UInt32(max(512, min(status.st_blksize, 1 << 20))))
                    : nil
            case .device:
                guard type == S_IFBLK else {
                    throw .configuration("\(path) is not a block device (phy: disks)")
                }
                var bytes: UInt64 = 0
                guard clinux_ioctl_ptr(fd, Self.blkGetSize64, &bytes) == 0 else {
                    throw .backing(path: path, "BLKGETSIZE64", Errno(rawValue: Glibc.errno))
                }
                sectorCount = bytes / UInt64(Blkif.sectorSize)
                let queue = Self.queueDirectory(status.st_rdev)
                // One copy less (no dom0 page cache between the guest and
                // the device), and a write is on the device when answered.
                if Self.sysfsNumber("\(queue)/logical_block_size") == UInt64(Blkif.sectorSize),
                    case .success(let direct) = retryingSyscall({
                        clinux_open(path, flags | CLINUX_O_DIRECT, 0)
                    })
                {
                    // The buffered descriptor was only for the size and type.
                    _ = Glibc.close(fd)
                    descriptor = FileDescriptor(rawValue: direct)
                    isDirect = true
                } else {
                    isDirect = false
                }
                physicalSectorSize =
                    Self.sysfsNumber("\(queue)/physical_block_size").map(Int.init)
                    ?? Blkif.sectorSize
                if backing.writable, let maximum = Self.sysfsNumber("\(queue)/discard_max_bytes"),
                    maximum > 0
                {
                    let granularity = Self.sysfsNumber("\(queue)/discard_granularity") ?? 512
                    discardSupport = BlockDiscardSupport(
                        granularity: UInt32(clamping: max(granularity, 512)),
                        secure: (Self.sysfsNumber("\(queue)/secure_erase") ?? 0) > 0)
                } else {
                    discardSupport = nil
                }
            }
        } catch {
            try? descriptor.close()
            throw error
        }
    }

    deinit { try? descriptor.close() }

    /// The backing's size now, in sectors (a file's length, a device's
    /// BLKGETSIZE64), nil when it cannot be read.
    public static func currentSectorCount(of descriptor: Int32, kind: BlockBacking.Kind) -> UInt64?
    {
        // The served inode's size, through a descriptor of it: a path could
        // by now name another file (replaced by rename).
        switch kind {
        case .file:
            var status = stat()
            guard fstat(descriptor, &status) == 0 else { return nil }
            return UInt64(max(0, status.st_size)) / UInt64(Blkif.sectorSize)
        case .device:
            var bytes: UInt64 = 0
            guard clinux_ioctl_ptr(descriptor, blkGetSize64, &bytes) == 0 else { return nil }
            return bytes / UInt64(Blkif.sectorSize)
        }
    }

    /// The open backing, for an engine that submits to it (``UringEngine``).
    var rawDescriptor: Int32 { descriptor.rawValue }

    /// The file opened O_DIRECT when its file system takes sector-aligned
    /// direct I/O (ext4, xfs on 512-byte devices), nil otherwise (tmpfs
    /// refuses the open; a 4096-byte device refuses the probe: a sector
    /// read at a sector, not page, offset into a sector-aligned buffer).
    static func openDirect(_ path: String, _ flags: Int32) -> Int32? {
        guard
            case .success(let fd) = retryingSyscall({
                clinux_open(path, flags | CLINUX_O_DIRECT, 0)
            })
        else { return nil }
        let probe = UnsafeMutableRawBufferPointer.allocate(
            byteCount: 2 * xenPageSize, alignment: xenPageSize)
        defer { probe.deallocate() }
        let result = retryingSyscall {
            pread(
                fd, probe.baseAddress! + Blkif.sectorSize, Blkif.sectorSize, off_t(Blkif.sectorSize)
            )
        }
        guard case .success(let count) = result, count == Blkif.sectorSize else {
            _ = Glibc.close(fd)
            return nil
        }
        return fd
    }

    /// `/sys/dev/block/MAJOR:MINOR/queue` of a device number (glibc's
    /// gnu_dev_major/minor split).
    static func queueDirectory(_ device: dev_t) -> String {
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~0xFFF)
        let minor = (device & 0xFF) | ((device >> 12) & ~0xFF)
        return "/sys/dev/block/\(major):\(minor)/queue"
    }

    static func sysfsNumber(_ path: String) -> UInt64? {
        guard let text = Files.readIfPresent(path) else { return nil }
        return UInt64(text.filter { !$0.isWhitespace })
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64)
        throws(BlockStorageError)
    {
        // Nothing read: the file shrank under us, and the guest must not
        // read stale bytes.
        try transfer("read", count: buffer.count, stalled: .ioError) { done in
            retryingSyscall {
                pread(
                    descriptor.rawValue, buffer.baseAddress! + done, buffer.count - done,
                    off_t(offset) + off_t(done))
            }
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64)
        throws(BlockStorageError)
    {
        try transfer("write", count: buffer.count, stalled: .noSpace) { done in
            retryingSyscall {
                pwrite(
                    descriptor.rawValue, buffer.baseAddress! + done, buffer.count - done,
                    off_t(offset) + off_t(done))
            }
        }
    }

    /// Repeats a positional read or write (`call`, given the bytes done so
    /// far) until `count` bytes moved; a call that moves none fails with
    /// `stalled`.
    private func transfer(
        _ operation: String, count: Int, stalled: Errno, _ call: (Int) -> Result<Int, Errno>
    ) throws(BlockStorageError) {
        var done = 0
        while done < count {
            switch call(done) {
            case .success(let moved) where moved > 0: done += moved
            case .success: throw BlockStorageError(operation, path: backing.path, errno: stalled)
            case .failure(let errno):
                throw BlockStorageError(operation, path: backing.path, errno: errno)
            }
        }
    }

    public func flush() throws(BlockStorageError) {
        if case .failure(let errno) = retryingSyscall({ fdatasync(descriptor.rawValue) }) {
            throw BlockStorageError("fdatasync", path: backing.path, errno: errno)
        }
    }

    public func discard(at offset: UInt64, count: UInt64, secure: Bool) throws(BlockStorageError) {
        guard count > 0 else { return }
        let fd = descriptor.rawValue
        switch backing.kind {
        case .file:
            if case .failure(let errno) = retryingSyscall({
                clinux_punch_hole(fd, Int64(offset), Int64(count))
            }) {
                throw BlockStorageError("punch hole", path: backing.path, errno: errno)
            }
        case .device:
            var range: (UInt64, UInt64) = (offset, count)
            let request = secure ? Self.blkSecureDiscard : Self.blkDiscard
            if case .failure(let errno) = retryingSyscall({
                clinux_ioctl_ptr(fd, request, &range)
            }) {
                throw BlockStorageError(
                    secure ? "BLKSECDISCARD" : "BLKDISCARD", path: backing.path, errno: errno)
            }
        }
    }
}
