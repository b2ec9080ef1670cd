import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Unix-socket and wake-up primitives for the transports and the in-memory
/// server. Every call goes through `retryingSyscall` (EINTR) or swift-system.
package enum XenStoreSocket {
    /// Connects a stream socket to `path`.
    package static func connect(path: String) throws(XenStoreError) -> FileDescriptor {
        let fd = try stream(operation: "socket for \(path)")
        do throws(XenStoreError) {
            try withAddress(path) { (address, length) throws(XenStoreError) in
                let result = retryingSyscall { Glibc.connect(fd.rawValue, address, length) }
                if case .failure(let errno) = result {
                    throw .system(operation: "connect to \(path)", errno)
                }
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    /// A connected pair of stream sockets.
    package static func pair() throws(XenStoreError) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        let result = fds.withUnsafeMutableBufferPointer { buffer in
            retryingSyscall {
                socketpair(
                    AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0,
                    buffer.baseAddress)
            }
        }
        if case .failure(let errno) = result { throw .system(operation: "socketpair", errno) }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    /// A listening stream socket bound to `path`; a stale socket file left
    /// by an earlier run is replaced.
    package static func listen(path: String, backlog: Int32 = 16) throws(XenStoreError)
        -> FileDescriptor
    {
        let fd = try stream(operation: "socket for \(path)")
        do throws(XenStoreError) {
            _ = unlink(path)
            try withAddress(path) { (address, length) throws(XenStoreError) in
                if case .failure(let errno) = retryingSyscall({ bind(fd.rawValue, address, length) }
                ) {
                    throw .system(operation: "bind \(path)", errno)
                }
            }
            if case .failure(let errno) = retryingSyscall({ Glibc.listen(fd.rawValue, backlog) }) {
                throw .system(operation: "listen on \(path)", errno)
            }
        } catch {
            try? fd.close()
            throw error
        }
        return fd
    }

    /// Accepts one connection (blocking).
    package static func accept(_ listener: FileDescriptor) throws(XenStoreError) -> FileDescriptor {
        let result = retryingSyscall { clinux_xenstore_accept(listener.rawValue) }
        switch result {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let errno): throw .system(operation: "accept", errno)
        }
    }

    /// Shuts both directions down: wakes a thread blocked reading or
    /// accepting on `fd` (it sees end-of-file or an error) without freeing
    /// the descriptor number under it.
    package static func shutdown(_ fd: FileDescriptor) {
        _ = singleSyscall { Glibc.shutdown(fd.rawValue, Int32(SHUT_RDWR)) }
    }

    /// Writes all of `bytes`; MSG_NOSIGNAL turns a vanished peer into EPIPE
    /// instead of a process-killing SIGPIPE.
    package static func sendAll(_ fd: FileDescriptor, _ bytes: [UInt8]) throws(XenStoreError) {
        var offset = 0
        while offset < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                retryingSyscall {
                    send(
                        fd.rawValue, buffer.baseAddress.map { $0 + offset }, buffer.count - offset,
                        Int32(MSG_NOSIGNAL))
                }
            }
            switch result {
            case .success(let count): offset += count
            case .failure(.brokenPipe), .failure(.connectionReset): throw .closed
            case .failure(let errno): throw .system(operation: "send", errno)
            }
        }
    }

    /// Reads what is available, up to `maximum` bytes, blocking until
    /// something is; empty at end-of-file.
    package static func receive(_ fd: FileDescriptor, maximum: Int) throws(XenStoreError)
        -> [UInt8]
    {
        do {
            return try [UInt8](unsafeUninitializedCapacity: maximum) { buffer, count in
                count = try fd.read(into: UnsafeMutableRawBufferPointer(buffer))
            }
        } catch let errno as Errno {
            if errno == .connectionReset { return [] }
            throw .system(operation: "read", errno)
        } catch {
            throw .system(operation: "read", .ioError)
        }
    }

    private static func stream(operation: String) throws(XenStoreError) -> FileDescriptor {
        let result = retryingSyscall {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        switch result {
        case .success(let fd): return FileDescriptor(rawValue: fd)
        case .failure(let errno): throw .system(operation: operation, errno)
        }
    }

    /// Calls `body` with a `sockaddr_un` for `path`.
    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(XenStoreError) -> Void
    ) throws(XenStoreError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity, !bytes.contains(0) else {
            throw .system(operation: "socket path \(path)", .fileNameTooLong)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        let result: Result<Void, XenStoreError> = withUnsafePointer(to: &address) { pointer in
            // sockaddr_un starts with the sockaddr header, as bind/connect expect.
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                do throws(XenStoreError) {
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

/// An eventfd used to wake a thread blocked in `poll`.
package struct WakeEvent: Sendable {
    package let fd: FileDescriptor

    package init() throws(XenStoreError) {
        let result = retryingSyscall { clinux_xenstore_eventfd(0) }
        switch result {
        case .success(let fd): self.fd = FileDescriptor(rawValue: fd)
        case .failure(let errno): throw .system(operation: "eventfd", errno)
        }
    }

    /// Makes the eventfd readable (for good: nobody drains it).
    package func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { try? fd.write($0) }
    }
}

/// Blocks until `fd` is readable (or hung up) or `wake` is signalled.
/// Returns false when woken.
package func waitReadable(_ fd: FileDescriptor, or wake: WakeEvent) throws(XenStoreError) -> Bool {
    var fds = [
        pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0),
        pollfd(fd: wake.fd.rawValue, events: Int16(POLLIN), revents: 0),
    ]
    let result = fds.withUnsafeMutableBufferPointer { buffer in
        retryingSyscall { poll(buffer.baseAddress, nfds_t(buffer.count), -1) }
    }
    if case .failure(let errno) = result { throw .system(operation: "poll", errno) }
    if fds[1].revents != 0 { return false }
    return true
}
