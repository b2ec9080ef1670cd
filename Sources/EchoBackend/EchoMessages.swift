import XenBus

/// A message on the echo ring, request and response alike: an id the
/// frontend chose and a value. Layout (16 bytes, 8-aligned):
/// `uint64_t id; uint64_t value;`.
public struct EchoMessage: RingDecodable, RingEncodable, Sendable, Equatable {
    public static let wireSize = 16
    public static let wireAlignment = 8

    public var id: UInt64
    public var value: UInt64

    public init(id: UInt64, value: UInt64) {
        self.id = id
        self.value = value
    }

    public init(ringEntry entry: RingEntryReader) {
        id = entry.load(at: 0)
        value = entry.load(at: 8)
    }

    public func encode(to entry: inout RingEntryWriter) {
        entry.store(id, at: 0)
        entry.store(value, at: 8)
    }

    /// What the backend answers for `value` of request `id`: a frontend can
    /// tell a right answer from a stale or mixed-up one.
    public static func echo(_ value: UInt64, id: UInt64) -> UInt64 {
        (value ^ id) &* 0x9E37_79B9_7F4A_7C15
    }
}

/// A request on the echo ring.
public typealias EchoRequest = EchoMessage

/// The echo ring's response: the request's id and
/// ``EchoMessage/echo(_:id:)`` of its value.
public typealias EchoResponse = EchoMessage
