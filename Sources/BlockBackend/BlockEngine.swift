import LinuxSystem
import SystemPackage
import Uring

#if canImport(Glibc)
    import Glibc
#endif

/// One operation on a disk's backing, with the memory it moves (the ring's
/// bounce buffer, which outlives the operation).
public enum BlockOperation {
    case read(UnsafeMutableRawBufferPointer, at: UInt64)
    case write(UnsafeRawBufferPointer, at: UInt64)
    /// Makes every write completed before it stable (`fdatasync`).
    case flush
    case discard(at: UInt64, count: UInt64, secure: Bool)
}

/// An operation's end: its tag and, when it failed, why.
public struct BlockCompletion {
    public var tag: UInt32
    public var error: BlockStorageError?

    public init(tag: UInt32, error: BlockStorageError?) {
        self.tag = tag
        self.error = error
    }
}

/// The I/O engine under a ring's ``BlockEndpoint``: operations are queued,
/// submitted together, and complete in any order. Used from the ring's
/// worker thread only.
///
/// An operation completes once done: a write once the backing has the data
/// (its cache at least, visible to every later read and to a successor
/// process), a flush once every write completed before it was queued is on
/// stable storage. The endpoint orders what needs ordering (a flush is
/// queued only after the writes it covers completed).
public protocol BlockEngine: AnyObject {
    /// Operations that can be queued now.
    var room: Int { get }
    /// Turns readable when completions come (wait on it edge-triggered: it
    /// may stay readable after they were reaped); nil when every operation
    /// completes within ``submit()``.
    var completionDescriptor: FileDescriptor? { get }
    /// Queues `operation`; the caller checked ``room``.
    func enqueue(_ operation: BlockOperation, tag: UInt32)
    /// Hands what was queued to the backing (one system call for io_uring).
    /// False when the kernel refused for now (the queue is kept and the
    /// next call retries).
    @discardableResult func submit() -> Bool
    /// Whether queued operations still wait for ``submit()``.
    var hasUnsubmitted: Bool { get }
    /// Whether completions are ready now (``reap(_:)`` has work).
    var hasCompletions: Bool { get }
    /// Calls `body` for every completion ready now, without waiting.
    func reap(_ body: (BlockCompletion) -> Void)
    /// Waits until nothing is in flight, dropping the completions (the
    /// endpoint is going away and frees the memory operations point into).
    func drain()
}

extension BlockStorage {
    /// Runs `operation` against this storage, to completion; its error, or
    /// nil. The engines that run operations themselves (the synchronous
    /// one, the tests' reordering one) share it.
    public func perform(_ operation: BlockOperation) -> BlockStorageError? {
        do throws(BlockStorageError) {
            switch operation {
            case .read(let buffer, let offset): try read(into: buffer, at: offset)
            case .write(let buffer, let offset): try write(buffer, at: offset)
            case .flush: try flush()
            case .discard(let offset, let count, let secure):
                try discard(at: offset, count: count, secure: secure)
            }
            return nil
        } catch {
            return error
        }
    }
}

/// Any ``BlockStorage`` as an engine: each operation runs, in queue order,
/// inside ``submit()`` on the worker thread (no kernel threads, no
/// overlap); the test disks and the measurement against io_uring use it.
public final class SynchronousEngine: BlockEngine {
    public let storage: any BlockStorage
    private var queued: [(BlockOperation, UInt32)] = []
    private var done: [BlockCompletion] = []

    public init(_ storage: any BlockStorage) {
        self.storage = storage
        queued.reserveCapacity(1024)
        done.reserveCapacity(1024)
    }

    public var room: Int { 1 << 16 }
    public var completionDescriptor: FileDescriptor? { nil }
    public var hasUnsubmitted: Bool { !queued.isEmpty }
    public var hasCompletions: Bool { !done.isEmpty }

    public func enqueue(_ operation: BlockOperation, tag: UInt32) {
        queued.append((operation, tag))
    }

    @discardableResult public func submit() -> Bool {
        for (operation, tag) in queued {
            done.append(BlockCompletion(tag: tag, error: storage.perform(operation)))
        }
        queued.removeAll(keepingCapacity: true)
        return true
    }

    public func reap(_ body: (BlockCompletion) -> Void) {
        for completion in done { body(completion) }
        done.removeAll(keepingCapacity: true)
    }

    public func drain() {
        queued.removeAll()
        done.removeAll()
    }
}

/// The io_uring engine (Debian's liburing): reads, writes and flushes of a
/// ring go to the kernel together in one `io_uring_enter` and run
/// concurrently (O_DIRECT devices: straight to the device queue; files:
/// the page cache, or the kernel's io-wq threads when they would block);
/// completions are taken without a system call from the completion queue,
/// whose descriptor wakes the ring's worker. Discards run synchronously
/// (`BLKDISCARD` is no io_uring operation on dom0's 6.1 kernel).
///
/// A short read or write (the kernel may split) is continued from where it
/// stopped; a read at the end of a file that shrank is an I/O error.
/// Killed with requests in flight, the process's exit waits for the ring's
/// requests to end before the successor starts, so a redone request never
/// races its predecessor's.
public final class UringEngine: BlockEngine {
    private struct Slot {
        var tag: UInt32 = 0
        var kind = IOUring.Kind.read
        var base: UnsafeMutableRawPointer? = nil
        var length = 0
        var offset: UInt64 = 0
        var done = 0
    }

    public let storage: FileStorage
    /// Operations in flight at most (the submission queue's size).
    public let entries: Int
    private let ring: IOUring
    private let backing: Int32
    private var slots: [Slot]
    private var free: [Int]
    private var local: [BlockCompletion] = []
    /// Slots queued and not yet submitted.
    private var pending: [Int] = []
    /// Slots the kernel has.
    private var submittedCount = 0
    /// Entries on the submission queue the kernel refused for now.
    private var unflushed = false
    /// The last ring operation was reaped: its signal may still come, and
    /// the next reap drains it.
    private var drainOwed = false
    /// Operations run inline (one alone, nothing in flight) and through
    /// the ring.
    public private(set) var inlineCount = 0
    public private(set) var ringCount = 0
    private let tags: UnsafeMutablePointer<UInt64>
    private let results: UnsafeMutablePointer<Int32>
    public let completionDescriptor: FileDescriptor?
    private let completions: WakeupEvent

    /// An io_uring of `entries` submission entries over `storage`'s
    /// descriptor.
    public init(_ storage: FileStorage, entries: Int = 256) throws(BlockBackendError) {
        self.storage = storage
        self.entries = entries
        do throws(IOUringError) {
            ring = try IOUring(entries: entries)
        } catch {
            throw .backing(
                path: storage.backing.path, "io_uring_queue_init", Errno(rawValue: error.errno))
        }
        backing = storage.rawDescriptor
        slots = Array(repeating: Slot(), count: entries)
        free = Array((0..<entries).reversed())
        local.reserveCapacity(entries)
        pending.reserveCapacity(entries)
        tags = .allocate(capacity: entries)
        results = .allocate(capacity: entries)
        // The worker waits on an eventfd the kernel signals per completion,
        // not on the ring's own descriptor: dom0's 6.1 kernel reports that
        // one readable while its request cache holds freed entries, which
        // would keep the worker spinning.
        do throws(SystemCallError) {
            completions = try WakeupEvent()
        } catch {
            throw .backing(path: storage.backing.path, "eventfd", error.errno)
        }
        let registered = ring.registerEventDescriptor(completions.descriptor.rawValue)
        guard registered == 0 else {
            throw .backing(
                path: storage.backing.path, "io_uring_register_eventfd",
                Errno(rawValue: -registered))
        }
        completionDescriptor = completions.descriptor
    }

    deinit {
        tags.deallocate()
        results.deallocate()
    }

    public var room: Int { free.count }
    public var hasUnsubmitted: Bool { !pending.isEmpty || unflushed }
    public var hasCompletions: Bool { !local.isEmpty || ring.readyCount > 0 }

    public func drain() {
        while free.count < entries {
            submit()
            // A lone operation ran inline and is done: with nothing in the
            // kernel, a wait would never return.
            if submittedCount == 0 && !unflushed {
                if pending.isEmpty { break }
                continue
            }
            let status = ring.waitForCompletion()
            if status < 0 && status != -EINTR && status != -EAGAIN { return }
            reap { _ in }
        }
        local.removeAll()
    }

    public func enqueue(_ operation: BlockOperation, tag: UInt32) {
        switch operation {
        case .read(let buffer, let offset):
            start(
                Slot(
                    tag: tag, kind: .read, base: buffer.baseAddress, length: buffer.count,
                    offset: offset))
        case .write(let buffer, let offset):
            start(
                Slot(
                    tag: tag, kind: .write,
                    base: UnsafeMutableRawPointer(mutating: buffer.baseAddress),
                    length: buffer.count, offset: offset))
        case .flush:
            start(Slot(tag: tag, kind: .dataSync))
        case .discard(let offset, let count, let secure):
            do throws(BlockStorageError) {
                try storage.discard(at: offset, count: count, secure: secure)
                local.append(BlockCompletion(tag: tag, error: nil))
            } catch {
                local.append(BlockCompletion(tag: tag, error: error))
            }
        }
    }

    private func start(_ slot: Slot) {
        guard let index = free.popLast() else {
            // The caller checks room; an overrun is failed, not lost.
            local.append(
                BlockCompletion(
                    tag: slot.tag,
                    error: BlockStorageError(
                        "io_uring", path: storage.backing.path, errno: .noBufferSpace)))
            return
        }
        slots[index] = slot
        pending.append(index)
    }

    /// Puts slot `index`'s remaining part on the submission queue (room is
    /// there: every slot has at most one entry queued or in flight, and the
    /// queue has an entry per slot).
    private func queue(_ index: Int) {
        let slot = slots[index]
        let remaining = slot.length - slot.done
        _ = ring.queue(
            slot.kind, fd: backing, buffer: slot.base.map { $0 + slot.done },
            length: UInt32(remaining), offset: slot.offset + UInt64(slot.done), tag: UInt64(index))
    }

    /// One operation alone with nothing in flight (a guest at queue depth
    /// 1) runs inline, as the synchronous engine would: through the ring it
    /// would cost a submission, a wakeup and often a kernel worker thread's
    /// hop, and there is nothing to overlap it with. Everything else goes
    /// to the kernel in one `io_uring_enter`.
    @discardableResult public func submit() -> Bool {
        if pending.count == 1 && submittedCount == 0 && !unflushed {
            let index = pending.removeLast()
            inlineCount += 1
            runInline(index)
            return true
        }
        guard !pending.isEmpty || unflushed else { return true }
        for index in pending { queue(index) }
        ringCount += pending.count
        submittedCount += pending.count
        let queued = pending.count
        pending.removeAll(keepingCapacity: true)
        let result = ring.submit()
        // Entries the kernel did not take stay on the submission queue and
        // go with the next call.
        unflushed = result < 0 || Int(result) < queued
        return result >= 0
    }

    private func runInline(_ index: Int) {
        let slot = slots[index]
        // From where a short ring operation stopped (0 for a fresh one).
        let buffer = UnsafeMutableRawBufferPointer(
            start: slot.base.map { $0 + slot.done }, count: slot.length - slot.done)
        let offset = slot.offset + UInt64(slot.done)
        var error: BlockStorageError? = nil
        do throws(BlockStorageError) {
            switch slot.kind {
            case .read: try storage.read(into: buffer, at: offset)
            case .write: try storage.write(UnsafeRawBufferPointer(buffer), at: offset)
            case .dataSync: try storage.flush()
            }
        } catch let failure {
            error = failure
        }
        free.append(index)
        local.append(BlockCompletion(tag: slot.tag, error: error))
    }

    public func reap(_ body: (BlockCompletion) -> Void) {
        if !local.isEmpty {
            for completion in local { body(completion) }
            local.removeAll(keepingCapacity: true)
        }
        // Drained before the queue is read, so a completion posted after
        // the read signals again; only while the kernel has operations, or
        // once more after the last of them was reaped, which spares a
        // system call per round. (A signal may still come just after its
        // entry was reaped: the worker waits on the descriptor
        // edge-triggered, so that costs one wakeup, never a spin.)
        if submittedCount > 0 || drainOwed {
            completions.drain()
            drainOwed = submittedCount > 0
        }
        while true {
            let count = ring.reap(tags: tags, results: results, capacity: entries)
            if count == 0 { return }
            for position in 0..<count {
                let index = Int(tags[position])
                guard slots.indices.contains(index) else { continue }
                submittedCount -= 1
                if submittedCount == 0 { drainOwed = true }
                let result = results[position]
                var slot = slots[index]
                var error: BlockStorageError? = nil
                if result < 0 {
                    error = BlockStorageError(
                        ["read", "write", "fdatasync"][Int(slot.kind.rawValue)],
                        path: storage.backing.path,
                        errno: Errno(rawValue: -result))
                } else if slot.kind != .dataSync {
                    if result == 0 {
                        // A read past a shrunk file's end, or a write the
                        // backing took nothing of.
                        error = BlockStorageError(
                            slot.kind == .read ? "read" : "write", path: storage.backing.path,
                            errno: slot.kind == .read ? .ioError : .noSpace)
                    } else {
                        slot.done += Int(result)
                        if slot.done < slot.length {
                            slots[index] = slot
                            pending.append(index)
                            continue
                        }
                    }
                }
                free.append(index)
                body(BlockCompletion(tag: slot.tag, error: error))
            }
        }
    }
}
