import Synchronization
import SystemPackage

/// The byte pipe under a ``XenStoreClient``: xenstored's Unix socket, the
/// kernel's /dev/xen/xenbus, or a test fake. Both real ones carry the same
/// framing (header + payload), as a stream.
///
/// The client calls ``receive()`` from one dedicated thread only and
/// serialises its calls to ``send(_:)``; ``close()`` may come from any
/// thread at any time.
public protocol XenStoreTransport: Sendable {
    /// Writes all of `bytes` (one whole message), blocking until done.
    ///
    /// - Throws: ``XenStoreError/closed`` after ``close()`` or when the peer
    ///   is gone, or another ``XenStoreError``.
    func send(_ bytes: [UInt8]) throws(XenStoreError)

    /// Blocks until bytes arrive and returns them, in any chunking. Returns
    /// an empty array at end of stream and once ``close()`` was called
    /// (including when it is called while blocked here).
    func receive() throws(XenStoreError) -> [UInt8]

    /// Closes the pipe; idempotent. Wakes a blocked ``receive()``.
    func close()
}

/// A transport over a file descriptor: a stream socket or the xenbus device.
///
/// A blocked ``receive()`` waits in `poll` on the descriptor and an eventfd,
/// so ``close()`` can wake it for either kind; the descriptor itself is
/// closed only once no call is using it, so its number is never reused
/// under a running `read`.
public final class FileDescriptorTransport: XenStoreTransport {
    private struct State {
        var closed = false
        var users = 0
        var released = false
    }

    private let fd: FileDescriptor
    private let wake: WakeEvent
    private let isSocket: Bool
    private let state = Mutex(State())

    /// Adopts `fd` (closed by this transport).
    ///
    /// - Parameter isSocket: sockets are written with `send(MSG_NOSIGNAL)`
    ///   and shut down on ``close()``; other descriptors use `write`.
    public init(adopting fd: FileDescriptor, isSocket: Bool) throws(XenStoreError) {
        do {
            wake = try WakeEvent()
        } catch {
            try? fd.close()
            throw error
        }
        self.fd = fd
        self.isSocket = isSocket
    }

    /// Connects to xenstored's Unix socket.
    public static func unixSocket(path: String) throws(XenStoreError) -> FileDescriptorTransport {
        try FileDescriptorTransport(adopting: XenStoreSocket.connect(path: path), isSocket: true)
    }

    /// Opens the kernel's xenbus device (a domain's, or dom0's, path to
    /// xenstored when no socket is available).
    public static func device(path: String) throws(XenStoreError) -> FileDescriptorTransport {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readWrite, options: [.closeOnExec])
        } catch let errno as Errno {
            throw .system(operation: "open \(path)", errno)
        } catch {
            throw .system(operation: "open \(path)", .ioError)
        }
        return try FileDescriptorTransport(adopting: fd, isSocket: false)
    }

    public func send(_ bytes: [UInt8]) throws(XenStoreError) {
        try using { () throws(XenStoreError) in
            if isSocket {
                try XenStoreSocket.sendAll(fd, bytes)
            } else {
                do {
                    // The xenbus device takes a message in one write.
                    _ = try fd.writeAll(bytes)
                } catch let errno as Errno {
                    throw .system(operation: "write to xenbus", errno)
                } catch {
                    throw .system(operation: "write to xenbus", .ioError)
                }
            }
        }
    }

    public func receive() throws(XenStoreError) -> [UInt8] {
        do {
            return try using { () throws(XenStoreError) -> [UInt8] in
                guard try waitReadable(fd, or: wake) else { return [] }
                return try XenStoreSocket.receive(
                    fd, maximum: XenStoreLimits.headerSize + XenStoreLimits.payloadMax)
            }
        } catch .closed {
            return []
        }
    }

    public func close() {
        let releaseNow = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.closed = true
            wake.signal()
            if isSocket { XenStoreSocket.shutdown(fd) }
            if state.users == 0 && !state.released {
                state.released = true
                return true
            }
            return false
        }
        if releaseNow { releaseDescriptors() }
    }

    deinit {
        let release = state.withLock { state -> Bool in
            defer { state.released = true }
            return !state.released
        }
        if release { releaseDescriptors() }
    }

    /// Runs `body` while counting it as a user of the descriptor.
    private func using<R>(_ body: () throws(XenStoreError) -> R) throws(XenStoreError) -> R {
        let open = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.users += 1
            return true
        }
        guard open else { throw .closed }
        defer {
            let releaseNow = state.withLock { state -> Bool in
                state.users -= 1
                if state.closed && state.users == 0 && !state.released {
                    state.released = true
                    return true
                }
                return false
            }
            if releaseNow { releaseDescriptors() }
        }
        return try body()
    }

    private func releaseDescriptors() {
        try? fd.close()
        try? wake.fd.close()
    }
}
