import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A file mapped shared into memory: stores into it reach the page cache at
/// once, so they outlive a crash of this process (on tmpfs, until reboot).
/// The data-path journals live in such files under /run.
public final class SharedFileMapping: @unchecked Sendable {
    // @unchecked: the mapping's address never changes; what is stored in it
    // is the owner's business (one data-path worker).

    /// The file's path.
    public let path: String
    /// The mapped bytes.
    public let bytes: UnsafeMutableRawBufferPointer
    /// Whether the file existed with the requested size before (a restarted
    /// process finds its predecessor's data) rather than being created or
    /// resized now.
    public let existed: Bool

    /// Opens or creates `path` with exactly `size` bytes and maps it.
    /// With `reset`, an existing file is emptied first (its old content
    /// must not be trusted). Parent folders are created.
    public init(path: String, size: Int, reset: Bool) throws(SystemCallError) {
        precondition(size > 0)
        self.path = path
        try Self.makeParents(of: path)
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .readWrite, options: [.create, .closeOnExec],
                permissions: [.ownerReadWrite])
        } catch {
            throw SystemCallError(operation: "open \(path)", error as? Errno ?? .ioError)
        }
        defer { try? fd.close() }
        var status = stat()
        guard fstat(fd.rawValue, &status) == 0 else {
            throw SystemCallError(operation: "stat \(path)", Errno(rawValue: errno))
        }
        let existed = !reset && Int(status.st_size) == size
        if !existed {
            // Truncating to zero first zeroes whatever was there.
            guard ftruncate(fd.rawValue, 0) == 0, ftruncate(fd.rawValue, off_t(size)) == 0 else {
                throw SystemCallError(operation: "truncate \(path)", Errno(rawValue: errno))
            }
        }
        guard
            let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0),
            address != MAP_FAILED
        else {
            throw SystemCallError(operation: "mmap \(path)", Errno(rawValue: errno))
        }
        self.bytes = UnsafeMutableRawBufferPointer(start: address, count: size)
        self.existed = existed
    }

    deinit { munmap(bytes.baseAddress, bytes.count) }

    /// Removes the file (the mapping stays valid until this object goes).
    public func unlink() {
        _ = path.withCString { Glibc.unlink($0) }
    }

    private static func makeParents(of path: String) throws(SystemCallError) {
        var prefix = ""
        let parts = path.split(separator: "/").dropLast()
        for part in parts {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw SystemCallError(operation: "mkdir \(prefix)", Errno(rawValue: errno))
            }
        }
    }
}
