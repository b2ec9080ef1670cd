/// xend's socket framing: every message is a 4-byte big-endian length and
/// that many bytes of payload (one S-expression in UTF-8).
public enum Framing {
    /// The largest payload either side accepts. A `(create ...)` request is
    /// a few KiB; `xm dmesg` replies carry Xen's console ring (16 KiB by
    /// default, larger with conring_size).
    public static let maximumPayload = 4 << 20

    /// The frame for a payload.
    public static func encode(_ payload: [UInt8]) throws(ToolstackError) -> [UInt8] {
        guard payload.count <= maximumPayload else {
            throw .malformedMessage(
                "a \(payload.count)-byte message is over the \(maximumPayload)-byte limit")
        }
        let length = UInt32(payload.count)
        return [
            UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff),
            UInt8(length & 0xff),
        ] + payload
    }
}

/// Reassembles frames from bytes as they arrive, whole or one at a time.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    /// Bytes received but not yet returned as a frame.
    public var pendingCount: Int { buffer.count - start }

    /// Adds received bytes.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete payload, or nil until more bytes arrive. A length
    /// over ``Framing/maximumPayload`` is an error (the stream is then
    /// unusable: nobody can tell where the next frame starts).
    public mutating func next() throws(ToolstackError) -> [UInt8]? {
        guard pendingCount >= 4 else { return nil }
        let length =
            Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8
            | Int(buffer[start + 3])
        guard length <= Framing.maximumPayload else {
            throw .malformedMessage(
                "a frame announces \(length) bytes, over the \(Framing.maximumPayload)-byte limit")
        }
        guard pendingCount >= 4 + length else { return nil }
        let payload = Array(buffer[(start + 4)..<(start + 4 + length)])
        start += 4 + length
        // Compact once the consumed prefix dominates, so memory stays bounded.
        if start > 4096 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
        return payload
    }
}
