/// Granted bytes that carry descriptors (blkif indirect pages, netif
/// packet headers), grant-copied once into private memory and decoded only
/// from there: a guest rewriting its page after the copy cannot change what
/// the decoder or a later validator sees (no double fetch).
///
/// Pieces are appended (a ref, an offset and a length in the guest page),
/// copied together in one batch by ``copy()``, and laid out back to back in
/// private memory in append order. Storage is allocated once; appending,
/// copying and reading never allocate.
///
/// Owned by one thread (the ring's worker): deliberately not `Sendable`.
public final class PrivateGrantCopy {
    /// The most pieces (and pages' worth of bytes) one copy holds.
    public let capacity: Int
    private let table: any GrantTable
    private let storage: UnsafeMutableRawBufferPointer
    private let batch: GrantCopyBatch
    // Bytes appended so far; the next piece goes there.
    private var end = 0
    // Whether the pieces appended were copied successfully, in full.
    private var copied = false

    /// Room for `capacity` pieces of up to a page each (negative counts as
    /// 0), copied through `table`.
    public init(table: any GrantTable, capacity: Int) {
        let capacity = max(capacity, 0)
        self.capacity = capacity
        self.table = table
        storage = .allocate(byteCount: capacity * xenPageSize, alignment: xenPageSize)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        batch = table.makeCopyBatch(capacity: capacity, local: storage)
    }

    deinit { storage.deallocate() }

    /// Pieces appended since the last ``removeAll()``.
    public var count: Int { batch.count }

    /// Forgets the pieces (storage is kept).
    public func removeAll() {
        batch.removeAll()
        end = 0
        copied = false
    }

    /// Appends `length` bytes at `offset` of page `ref` of `domain` (by
    /// default the whole page). False when full; a piece crossing its page
    /// is accepted here and fails ``copy()``.
    @discardableResult
    public func append(
        domain: DomainID, ref: GrantRef, offset: UInt16 = 0,
        length: UInt16 = UInt16(xenPageSize)
    ) -> Bool {
        guard
            batch.append(
                GrantCopySegment(
                    .fromGuest, domain: domain, ref: ref, offset: offset, length: length,
                    localOffset: end))
        else { return false }
        end += Int(length)
        copied = false
        return true
    }

    /// Grant-copies every piece appended, in one batch. Throws
    /// ``XenBusError/grantRefused(domain:ref:status:)`` for the first piece
    /// that failed (guest faults: a ref not granted, another domain's ref, a
    /// piece crossing its page), or the device's error; readers are empty
    /// then.
    public func copy() throws(XenBusError) {
        copied = false
        try table.copy(batch)
        for index in 0..<batch.count {
            let status = batch.status(at: index)
            if !status.isOkay {
                let segment = batch.segment(at: index)
                throw .grantRefused(domain: segment.domain, ref: segment.ref, status: status)
            }
        }
        copied = true
    }

    /// Runs `body` with a reader over all pieces' private bytes, back to
    /// back (empty before a successful ``copy()``). The reader is valid only
    /// during the call.
    public func withReader<R, E: Error>(_ body: (PrivateCopyReader) throws(E) -> R) throws(E)
        -> R
    {
        let bytes = UnsafeRawBufferPointer(rebasing: storage[0..<(copied ? end : 0)])
        return try body(PrivateCopyReader(privateCopy: bytes))
    }

    /// Runs `body` with a reader over piece `index`'s private bytes (empty
    /// for an index outside the pieces or before a successful ``copy()``).
    public func withReader<R, E: Error>(
        piece index: Int, _ body: (PrivateCopyReader) throws(E) -> R
    ) throws(E) -> R {
        var range = 0..<0
        if copied, index >= 0, index < batch.count {
            let segment = batch.segment(at: index)
            range = segment.localOffset..<(segment.localOffset + Int(segment.length))
        }
        return try body(
            PrivateCopyReader(privateCopy: UnsafeRawBufferPointer(rebasing: storage[range])))
    }
}

/// Bounds-checked little-endian reads from private memory (a
/// ``PrivateGrantCopy``): every offset may come from the guest, so a read
/// outside the bytes is nil, never a trap.
public struct PrivateCopyReader {
    private let bytes: UnsafeRawBufferPointer

    init(privateCopy bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Number of bytes readable.
    public var count: Int { bytes.count }

    /// The little-endian integer at `offset`; nil if it does not fit.
    public func load<T: FixedWidthInteger>(_ type: T.Type = T.self, at offset: Int) -> T? {
        guard offset >= 0, offset <= bytes.count - MemoryLayout<T>.size else { return nil }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// A reader over `count` bytes at `offset` (e.g. one descriptor); nil if
    /// they do not fit.
    public func slice(at offset: Int, count: Int) -> PrivateCopyReader? {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else { return nil }
        return PrivateCopyReader(
            privateCopy: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
    }

    /// Copies `count` bytes at `offset` into `destination`; false (nothing
    /// copied) if they do not fit either side.
    public func copyBytes(at offset: Int, count: Int, to destination: UnsafeMutableRawBufferPointer)
        -> Bool
    {
        guard let source = slice(at: offset, count: count), count <= destination.count else {
            return false
        }
        guard count > 0, let target = destination.baseAddress, let from = source.bytes.baseAddress
        else { return true }
        target.copyMemory(from: from, byteCount: count)
        return true
    }
}
