import CLinux
import LinuxSystem
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// Unix-socket and wake-up primitives for the transports and the in-memory
/// server: LinuxSystem's ``LinuxSystem/UnixSocket`` with this module's
/// error, plus the reads and writes whose failures mean a closed store.
package enum XenStoreSocket {
    /// Connects a stream socket to `path`.
    package static func connect(path: String) throws(XenStoreError) -> FileDescriptor {
        try SystemCallError.mapping(XenStoreError.init) { () throws(SystemCallError) in
            try UnixSocket.connect(path: path)
        }
    }

    /// A connected pair of stream sockets.
    package static func pair() throws(XenStoreError) -> (FileDescriptor, FileDescriptor) {
        try SystemCallError.mapping(XenStoreError.init) { () throws(SystemCallError) in
            try UnixSocket.pair()
        }
    }

    /// A listening stream socket bound to `path`; a stale socket file left
    /// by an earlier run is replaced.
    package static func listen(path: String, backlog: Int32 = 16) throws(XenStoreError)
        -> FileDescriptor
    {
        try SystemCallError.mapping(XenStoreError.init) { () throws(SystemCallError) in
            try UnixSocket.listen(path: path, backlog: backlog)
        }
    }

    /// Accepts one connection (blocking).
    package static func accept(_ listener: FileDescriptor) throws(XenStoreError) -> FileDescriptor {
        try SystemCallError.mapping(XenStoreError.init) { () throws(SystemCallError) in
            try UnixSocket.accept(listener)
        }
    }

    /// Shuts both directions down (``LinuxSystem/UnixSocket/shutdown(_:)``).
    package static func shutdown(_ fd: FileDescriptor) {
        UnixSocket.shutdown(fd)
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
