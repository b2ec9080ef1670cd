import CLinux
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// An epoll instance: descriptors registered with a 64-bit token each,
/// waited on together. Level-triggered, so a descriptor that is still
/// readable after a wakeup reports again on the next wait.
///
/// Owned by one thread (the data-path worker that waits on it);
/// registration from another thread is safe for the kernel but the owner
/// must not be told about it behind its back.
public final class EventPoll {
    /// What a registration waits for and what a wait reports.
    public struct Events: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let readable = Events(rawValue: CLINUX_EPOLLIN)
        public static let writable = Events(rawValue: CLINUX_EPOLLOUT)
        /// Reported only: an error on the descriptor.
        public static let error = Events(rawValue: CLINUX_EPOLLERR)
        /// Reported only: the other end hung up.
        public static let hangUp = Events(rawValue: CLINUX_EPOLLHUP)
        /// Reported once per change, not while it lasts (EPOLLET): for a
        /// descriptor whose readiness may outlive the work it announced.
        public static let edgeTriggered = Events(rawValue: CLINUX_EPOLLET)
    }

    /// One ready registration.
    public struct Ready: Sendable, Equatable {
        public var token: UInt64
        public var events: Events
    }

    /// The epoll descriptor.
    public let descriptor: FileDescriptor
    private var tokens: [UInt64]
    private var events: [UInt32]

    /// Creates an epoll instance (close-on-exec) that reports at most
    /// `batch` ready descriptors per wait.
    public init(batch: Int = 32) throws(SystemCallError) {
        switch retryingSyscall({ clinux_epoll_create() }) {
        case .success(let fd): descriptor = FileDescriptor(rawValue: fd)
        case .failure(let errno): throw SystemCallError(operation: "epoll_create1", errno)
        }
        let batch = max(1, min(batch, 64))
        tokens = [UInt64](repeating: 0, count: batch)
        events = [UInt32](repeating: 0, count: batch)
    }

    deinit { try? descriptor.close() }

    /// Watches `fd` for `events`, reporting `token` when ready.
    public func add(_ fd: FileDescriptor, _ events: Events, token: UInt64) throws(SystemCallError) {
        if case .failure(let errno) = retryingSyscall({
            clinux_epoll_add(descriptor.rawValue, fd.rawValue, events.rawValue, token)
        }) {
            throw SystemCallError(operation: "epoll add fd \(fd.rawValue)", errno)
        }
    }

    /// Changes what `fd` is watched for.
    public func modify(_ fd: FileDescriptor, _ events: Events, token: UInt64)
        throws(SystemCallError)
    {
        if case .failure(let errno) = retryingSyscall({
            clinux_epoll_modify(descriptor.rawValue, fd.rawValue, events.rawValue, token)
        }) {
            throw SystemCallError(operation: "epoll modify fd \(fd.rawValue)", errno)
        }
    }

    /// Stops watching `fd` (closing it does that too).
    public func remove(_ fd: FileDescriptor) throws(SystemCallError) {
        if case .failure(let errno) = retryingSyscall({
            clinux_epoll_remove(descriptor.rawValue, fd.rawValue)
        }) {
            throw SystemCallError(operation: "epoll remove fd \(fd.rawValue)", errno)
        }
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever, 0: just look) and
    /// calls `body` for each ready registration. Returns how many there were;
    /// an interrupted wait returns 0.
    @discardableResult
    public func wait(
        timeoutMilliseconds: Int32, _ body: (Ready) -> Void = { _ in }
    ) throws(SystemCallError) -> Int {
        let max = Int32(tokens.count)
        let count = tokens.withUnsafeMutableBufferPointer { tokens in
            events.withUnsafeMutableBufferPointer { events in
                clinux_epoll_wait(
                    descriptor.rawValue, tokens.baseAddress, events.baseAddress, max,
                    timeoutMilliseconds)
            }
        }
        if count < 0 {
            let errno = Errno(rawValue: Glibc.errno)
            if errno == .interrupted { return 0 }
            throw SystemCallError(operation: "epoll_wait", errno)
        }
        for index in 0..<Int(count) {
            body(Ready(token: tokens[index], events: Events(rawValue: events[index])))
        }
        return Int(count)
    }
}

/// An eventfd: a counter another thread increments to wake a thread that
/// waits on it with epoll or poll. Non-blocking and close-on-exec.
public final class WakeupEvent: Sendable {
    /// The eventfd.
    public let descriptor: FileDescriptor

    public init() throws(SystemCallError) {
        switch retryingSyscall({ clinux_eventfd(0) }) {
        case .success(let fd): descriptor = FileDescriptor(rawValue: fd)
        case .failure(let errno): throw SystemCallError(operation: "eventfd", errno)
        }
    }

    deinit { try? descriptor.close() }

    /// Makes the descriptor readable (adds 1 to the counter). Safe from
    /// any thread; never blocks.
    public func signal() {
        var one: UInt64 = 1
        // Only EAGAIN can fail here (counter at its maximum), and then the
        // descriptor is readable already.
        _ = withUnsafeBytes(of: &one) { bytes in
            retryingSyscall { Glibc.write(descriptor.rawValue, bytes.baseAddress, 8) }
        }
    }

    /// Reads the counter back to zero; returns how many signals it held.
    @discardableResult
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        let result = withUnsafeMutableBytes(of: &value) { bytes in
            retryingSyscall { Glibc.read(descriptor.rawValue, bytes.baseAddress, 8) }
        }
        if case .success(8) = result { return value }
        return 0
    }
}
