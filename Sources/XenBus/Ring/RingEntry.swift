/// A message type carried in the slots of an io/ring.h shared ring. The
/// sizes describe the C struct, so the ring can compute the C union's size.
public protocol RingMessage {
    /// `sizeof` of the C struct, trailing padding included.
    static var wireSize: Int { get }
    /// `_Alignof` of the C struct.
    static var wireAlignment: Int { get }
}

/// A message read off a ring. The only way in is ``init(ringEntry:)``, whose
/// reader sees a private copy of the slot taken once: a guest rewriting the
/// slot afterwards cannot change what the decoder or a later validator sees.
public protocol RingDecodable: RingMessage {
    init(ringEntry: RingEntryReader)
}

/// A message written onto a ring.
public protocol RingEncodable: RingMessage {
    func encode(to entry: inout RingEntryWriter)
}

/// Read access to a private copy of one ring slot (little-endian fields).
/// Valid only during the decoder call that receives it.
public struct RingEntryReader {
    private let bytes: UnsafeRawBufferPointer

    init(privateCopy bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Runs `body` with a reader over a copy of `bytes`, for decoders fed
    /// from test vectors or from other private memory.
    public static func withCopy<R>(of bytes: [UInt8], _ body: (RingEntryReader) -> R) -> R {
        let copy = bytes
        return copy.withUnsafeBytes { body(RingEntryReader(privateCopy: $0)) }
    }

    /// Number of bytes in the entry (the message's `wireSize`).
    public var count: Int { bytes.count }

    /// The little-endian integer at `offset`; 0 (and an assertion in debug
    /// builds) for an offset outside the entry, which is a decoder bug.
    public func load<T: FixedWidthInteger>(_ type: T.Type = T.self, at offset: Int) -> T {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else {
            assertionFailure("ring entry read at \(offset) outside \(bytes.count) bytes")
            return 0
        }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// `count` raw bytes at `offset` (clamped to the entry).
    public func bytes(at offset: Int, count: Int) -> [UInt8] {
        let start = max(0, min(offset, bytes.count))
        let end = max(start, min(start + max(0, count), bytes.count))
        return Array(bytes[start..<end])
    }
}

/// Write access to one ring slot while a message encodes itself. The ring
/// zero-fills the message's bytes first, so padding never carries stale data.
public struct RingEntryWriter {
    private let bytes: UnsafeMutableRawBufferPointer

    init(slot bytes: UnsafeMutableRawBufferPointer) {
        self.bytes = bytes
    }

    /// Runs `body` with a writer over a zeroed buffer of `count` bytes and
    /// returns them, for tests of encoders.
    public static func encode(count: Int, _ body: (inout RingEntryWriter) -> Void) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { buffer in
            var writer = RingEntryWriter(slot: buffer)
            body(&writer)
        }
        return out
    }

    /// Number of bytes in the entry (the message's `wireSize`).
    public var count: Int { bytes.count }

    /// Stores `value` little-endian at `offset`; ignored (and an assertion
    /// in debug builds) outside the entry, which is an encoder bug.
    public mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else {
            assertionFailure("ring entry write at \(offset) outside \(bytes.count) bytes")
            return
        }
        bytes.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    /// Stores raw bytes at `offset` (clamped to the entry).
    public mutating func store(bytes source: [UInt8], at offset: Int) {
        guard offset >= 0, offset < bytes.count else { return }
        let count = min(source.count, bytes.count - offset)
        for index in 0..<count { bytes[offset + index] = source[index] }
    }
}
