import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets for xend's API. Every call goes through
/// `retryingSyscall` (EINTR) or swift-system.
enum UnixSocket {
    /// A listening socket at `path` with the given mode (a stale socket
    /// file from an earlier run is replaced).
    static func listen(path: String, mode: mode_t) throws(ToolstackError) -> FileDescriptor {
        let fd = try stream(path)
        do throws(ToolstackError) {
            _ = unlink(path)
            try withAddress(path) { (address, length) throws(ToolstackError) in
                if case .failure(let errno) = retryingSyscall({ bind(fd.rawValue, address, length) }
                ) {
                    throw .system(operation: "bind \(path)", errno)
                }
            }
            // Before listen: nobody can connect while the mode is wider.
            if case .failure(let errno) = retryingSyscall({ chmod(path, mode) }) {
                throw .system(operation: "chmod \(path)", errno)
            }
            if case .failure(let errno) = retryingSyscall({ Glibc.listen(fd.rawValue, 16) }) {
                throw .system(operation: "listen on \(path)", errno)
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    /// Accepts one connection (blocking); the new descriptor is
    /// close-on-exec.
    static func accept(_ listener: FileDescriptor) throws(ToolstackError) -> FileDescriptor {
        switch retryingSyscall({ Glibc.accept(listener.rawValue, nil, nil) }) {
        case .success(let fd):
            _ = clinux_fcntl_int(fd, F_SETFD, FD_CLOEXEC)
            return FileDescriptor(rawValue: fd)
        case .failure(let errno):
            throw .system(operation: "accept", errno)
        }
    }

    /// Connects to `path`.
    static func connect(path: String) throws(ToolstackError) -> FileDescriptor {
        let fd = try stream(path)
        do throws(ToolstackError) {
            try withAddress(path) { (address, length) throws(ToolstackError) in
                if case .failure(let errno) = retryingSyscall({
                    Glibc.connect(fd.rawValue, address, length)
                }) {
                    throw .system(operation: "connect to \(path)", errno)
                }
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    private static func stream(_ path: String) throws(ToolstackError) -> FileDescriptor {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        switch retryingSyscall({ socket(AF_UNIX, type, 0) }) {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let errno): throw .system(operation: "socket for \(path)", errno)
        }
    }

    private static func withAddress<R>(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(ToolstackError) -> R
    ) throws(ToolstackError) -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else {
            throw .system(operation: "socket path \(path) is too long", .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let result: Result<R, ToolstackError> = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                do throws(ToolstackError) {
                    return .success(try body(generic, length))
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    /// Reads what is available (blocking until something is); 0 at end of
    /// file.
    static func read(_ fd: FileDescriptor, into buffer: inout [UInt8]) throws(ToolstackError)
        -> Int
    {
        do {
            return try buffer.withUnsafeMutableBytes {
                try fd.read(into: $0, retryOnInterrupt: true)
            }
        } catch {
            throw .system(operation: "read", error as? Errno ?? .ioError)
        }
    }

    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(ToolstackError) {
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw .system(operation: "write", error as? Errno ?? .ioError)
        }
    }
}
