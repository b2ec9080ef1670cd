/// The last bytes a guest wrote, kept for replay to a client that attaches
/// (conserver's playback): a fixed-size circular store, allocated once, so
/// a flooding guest cannot grow it.
public struct ReplayHistory: Sendable {
    private var storage: [UInt8]
    private var end = 0
    /// Bytes held (at most the capacity).
    public private(set) var count = 0

    /// A history of the last `capacity` bytes (at least 1).
    public init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(1, capacity))
    }

    /// The most bytes held.
    public var capacity: Int { storage.count }

    /// Appends output; the oldest bytes go when the store is full.
    public mutating func append<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        var rest = bytes[...]
        if rest.count > storage.count { rest = rest.suffix(storage.count) }
        for byte in rest {
            storage[end] = byte
            end = end + 1 == storage.count ? 0 : end + 1
        }
        count = min(storage.count, count + rest.count)
    }

    /// The last `lines` lines: the unfinished line at the end (a shell's
    /// prompt) plus up to `lines` complete lines before it. Zero gives just
    /// the unfinished line. Bounded by what the store still holds.
    public func lastLines(_ lines: Int) -> [UInt8] {
        var taken = 0
        var newlines = 0
        // Walk backwards from the newest byte; a newline that ends the
        // history belongs to the last complete line.
        while taken < count {
            let index = (end - 1 - taken + storage.count * 2) % storage.count
            if storage[index] == 0x0a {
                if newlines == max(0, lines) { break }
                newlines += 1
            }
            taken += 1
        }
        return last(taken)
    }

    /// The newest `n` bytes held, oldest first.
    public func last(_ n: Int) -> [UInt8] {
        let n = min(max(0, n), count)
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var index = (end - n + storage.count) % storage.count
        for _ in 0..<n {
            out.append(storage[index])
            index = index + 1 == storage.count ? 0 : index + 1
        }
        return out
    }
}
