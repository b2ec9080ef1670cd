internal import CURing

/// An io_uring instance (Debian's liburing) for a data path: operations
/// queued on its submission queue, handed to the kernel by ``submit()``,
/// their completions taken without a system call. Its descriptor is
/// readable (epoll) while completions wait. The only importer of liburing
/// (its bundled `io_uring.h` must not meet swift-system's in one module).
///
/// Used by one thread at a time.
public final class IOUring {
    /// What an operation does (the shim's kinds).
    public enum Kind: Int32, Sendable {
        case read = 0
        case write = 1
        /// `fdatasync` of the descriptor.
        case dataSync = 2
    }

    private let ring: UnsafeMutablePointer<io_uring>
    /// Submission-queue entries.
    public let entries: Int

    /// A ring of `entries` submission entries; throws the negative errno of
    /// `io_uring_queue_init` (ENOSYS, EPERM where io_uring is disabled).
    public init(entries: Int) throws(IOUringError) {
        ring = .allocate(capacity: 1)
        let status = io_uring_queue_init(UInt32(entries), ring, 0)
        guard status == 0 else {
            ring.deallocate()
            throw IOUringError(errno: -status)
        }
        self.entries = entries
    }

    deinit {
        io_uring_queue_exit(ring)
        ring.deallocate()
    }

    /// The ring's descriptor.
    public var descriptor: Int32 { curing_fd(ring) }

    /// Has the kernel signal `eventfd` whenever it posts a completion; 0
    /// or a negative errno.
    public func registerEventDescriptor(_ eventfd: Int32) -> Int32 {
        io_uring_register_eventfd(ring, eventfd)
    }

    /// Completions ready to take.
    public var readyCount: Int { Int(curing_ready(ring)) }

    /// Submission entries free now.
    public var spaceLeft: Int { Int(curing_space(ring)) }

    /// Queues one operation on `fd` with `tag` as its user data; false when
    /// the submission queue is full.
    public func queue(
        _ kind: Kind, fd: Int32, buffer: UnsafeMutableRawPointer?, length: UInt32,
        offset: UInt64, tag: UInt64
    ) -> Bool {
        curing_queue(ring, kind.rawValue, fd, buffer, length, offset, tag) == 0
    }

    /// Hands the queued entries to the kernel: how many it took, or a
    /// negative errno (EAGAIN, EBUSY: try again later).
    public func submit() -> Int32 { io_uring_submit(ring) }

    /// Takes up to `capacity` ready completions into `tags` and `results`
    /// (bytes done, or a negative errno); how many.
    public func reap(
        tags: UnsafeMutablePointer<UInt64>, results: UnsafeMutablePointer<Int32>, capacity: Int
    ) -> Int {
        Int(curing_reap(ring, tags, results, UInt32(capacity)))
    }

    /// Waits until a completion is ready (without taking it); 0 or a
    /// negative errno.
    public func waitForCompletion() -> Int32 {
        var completion: UnsafeMutablePointer<io_uring_cqe>? = nil
        return io_uring_wait_cqe(ring, &completion)
    }
}

/// io_uring refused: the negated result, an errno.
public struct IOUringError: Error, Sendable, Equatable {
    public var errno: Int32
}
