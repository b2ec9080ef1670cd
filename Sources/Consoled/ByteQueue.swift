/// A bounded FIFO of bytes for one client's output: allocated once; when
/// full, the oldest bytes are dropped and counted, so a slow or stopped
/// client never holds the guest or anyone else back and never makes the
/// daemon grow.
public struct ByteQueue: Sendable {
    private var storage: [UInt8]
    private var start = 0
    /// Bytes queued.
    public private(set) var count = 0
    /// Bytes dropped since the last ``takeDropped()``.
    public private(set) var dropped = 0

    /// A queue holding at most `capacity` bytes (at least 1).
    public init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(1, capacity))
    }

    public var capacity: Int { storage.count }
    public var isEmpty: Bool { count == 0 }

    /// Queues `bytes`; whatever does not fit pushes out the oldest bytes.
    /// Returns how many bytes were dropped by this call.
    @discardableResult
    public mutating func append<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Int {
        var rest = bytes[...]
        var lost = 0
        if rest.count > storage.count {
            lost += rest.count - storage.count
            rest = rest.suffix(storage.count)
        }
        let overflow = count + rest.count - storage.count
        if overflow > 0 {
            consume(overflow)
            lost += overflow
        }
        var index = (start + count) % storage.count
        for byte in rest {
            storage[index] = byte
            index = index + 1 == storage.count ? 0 : index + 1
        }
        count += rest.count
        dropped += lost
        return lost
    }

    /// Calls `body` with the oldest contiguous run of queued bytes (empty
    /// when the queue is); `body` returns how many it used, which are then
    /// removed.
    public mutating func withContiguousFront(
        _ body: (UnsafeRawBufferPointer) -> Int
    ) {
        let run = min(count, storage.count - start)
        let used = storage.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[start..<start + run]))
        }
        consume(min(max(0, used), run))
    }

    /// Removes the oldest `n` bytes.
    public mutating func consume(_ n: Int) {
        let n = min(max(0, n), count)
        start = (start + n) % storage.count
        count -= n
        if count == 0 { start = 0 }
    }

    /// The dropped count so far, reset to zero.
    public mutating func takeDropped() -> Int {
        defer { dropped = 0 }
        return dropped
    }
}
