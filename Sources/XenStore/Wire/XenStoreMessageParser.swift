/// Splits a byte stream into xenstore messages. Pure and incremental: feed
/// bytes in any chunking with ``append(_:)``, take whole messages with
/// ``next()``.
///
/// A header announcing more than ``XenStoreLimits/payloadMax`` bytes is a
/// protocol violation (xenstored kills such connections); the parser then
/// stays failed, since the stream has no resynchronisation point.
public struct XenStoreMessageParser: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    private var failure: XenStoreError?
    private let maximumPayload: Int

    public init(maximumPayload: Int = XenStoreLimits.payloadMax) {
        self.maximumPayload = maximumPayload
    }

    /// Bytes received but not yet returned as a message.
    public var bufferedCount: Int { buffer.count - start }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        // Compact once the consumed prefix dominates, so the buffer stays
        // near one message in size however long the stream runs.
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete message, or nil if more bytes are needed.
    ///
    /// - Throws: ``XenStoreError/protocol(_:)`` for an oversized length field,
    ///   on this and every later call.
    public mutating func next() throws(XenStoreError) -> XenStoreMessage? {
        if let failure { throw failure }
        let available = buffer.count - start
        guard available >= XenStoreLimits.headerSize else { return nil }
        let type = field(0)
        let requestID = field(4)
        let transactionID = field(8)
        let length = Int(field(12))
        guard length <= maximumPayload else {
            let error = XenStoreError.protocol(
                "\(XenStoreMessageType(rawValue: type)) message announces a \(length)-byte payload,"
                    + " over the \(maximumPayload)-byte limit")
            failure = error
            throw error
        }
        guard available >= XenStoreLimits.headerSize + length else { return nil }
        let payloadStart = start + XenStoreLimits.headerSize
        let payload = Array(buffer[payloadStart..<payloadStart + length])
        start = payloadStart + length
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return XenStoreMessage(
            type: XenStoreMessageType(rawValue: type), requestID: requestID,
            transactionID: transactionID, payload: payload)
    }

    /// The little-endian u32 at `offset` from the current message start.
    private func field(_ offset: Int) -> UInt32 {
        let base = start + offset
        return UInt32(buffer[base]) | UInt32(buffer[base + 1]) << 8
            | UInt32(buffer[base + 2]) << 16 | UInt32(buffer[base + 3]) << 24
    }
}
