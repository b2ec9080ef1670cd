import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Unix stream sockets (close-on-exec), for xenstored's socket, xend's API
/// and their in-memory stand-ins. Every call goes through `retryingSyscall`
/// (EINTR); a failure names the call and the path.
public enum UnixSocket {
    /// Connects a stream socket to `path`.
    public static func connect(path: String) throws(SystemCallError) -> FileDescriptor {
        let fd = try stream(path)
        do throws(SystemCallError) {
            try withAddress(path) { (address, length) throws(SystemCallError) in
                let result = retryingSyscall { Glibc.connect(fd.rawValue, address, length) }
                if case .failure(let errno) = result {
                    throw SystemCallError(operation: "connect to \(path)", errno)
                }
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    /// A listening stream socket bound to `path`; a stale socket file left
    /// by an earlier run is replaced. With a `mode`, the socket file gets it
    /// before listening, so nobody connects while it is wider.
    public static func listen(path: String, backlog: Int32 = 16, mode: mode_t? = nil)
        throws(SystemCallError) -> FileDescriptor
    {
        let fd = try stream(path)
        do throws(SystemCallError) {
            _ = unlink(path)
            try withAddress(path) { (address, length) throws(SystemCallError) in
                if case .failure(let errno) = retryingSyscall({ bind(fd.rawValue, address, length) }
                ) {
                    throw SystemCallError(operation: "bind \(path)", errno)
                }
            }
            if let mode, case .failure(let errno) = retryingSyscall({ chmod(path, mode) }) {
                throw SystemCallError(operation: "chmod \(path)", errno)
            }
            if case .failure(let errno) = retryingSyscall({ Glibc.listen(fd.rawValue, backlog) }) {
                throw SystemCallError(operation: "listen on \(path)", errno)
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    /// Accepts one connection (blocking); the new descriptor is
    /// close-on-exec.
    public static func accept(_ listener: FileDescriptor) throws(SystemCallError)
        -> FileDescriptor
    {
        switch retryingSyscall({ clinux_xenstore_accept(listener.rawValue) }) {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let errno): throw SystemCallError(operation: "accept", errno)
        }
    }

    /// A connected pair of stream sockets.
    public static func pair() throws(SystemCallError) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        let result = fds.withUnsafeMutableBufferPointer { buffer in
            retryingSyscall {
                socketpair(
                    AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0,
                    buffer.baseAddress)
            }
        }
        if case .failure(let errno) = result {
            throw SystemCallError(operation: "socketpair", errno)
        }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// Shuts both directions down: wakes a thread blocked reading or
    /// accepting on `fd` (it sees end-of-file or an error) without freeing
    /// the descriptor number under it.
    public static func shutdown(_ fd: FileDescriptor) {
        _ = singleSyscall { Glibc.shutdown(fd.rawValue, Int32(SHUT_RDWR)) }
    }

    private static func stream(_ path: String) throws(SystemCallError) -> FileDescriptor {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        switch retryingSyscall({ socket(AF_UNIX, type, 0) }) {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let errno): throw SystemCallError(operation: "socket for \(path)", errno)
        }
    }

    /// Calls `body` with a `sockaddr_un` for `path`; an empty path, one
    /// with a NUL byte or one too long for `sun_path` is refused.
    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(SystemCallError) -> Void
    ) throws(SystemCallError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw SystemCallError(operation: "socket path \(path)", .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let result: Result<Void, SystemCallError> = withUnsafePointer(to: &address) { pointer in
            // sockaddr_un starts with the sockaddr header, as bind/connect expect.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                do throws(SystemCallError) {
                    try body(generic, length)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }
}
