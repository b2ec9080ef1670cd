/// A Xen domain ID (`domid_t`, 16 bits).
public struct DomainID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public init(_ value: UInt16) { self.rawValue = value }

    /// IDs from `DOMID_FIRST_RESERVED` (0x7FF0) up name special domains
    /// (DOMID_SELF, DOMID_IO, ...) and never a guest.
    public static let firstReserved: UInt16 = 0x7FF0

    /// Parses a decimal domain ID as written in the store; nil for anything
    /// that is not a plain number below ``firstReserved``.
    public init?(parsing text: String) {
        guard let value: UInt16 = parseDecimal(text), value < Self.firstReserved else {
            return nil
        }
        self.rawValue = value
    }

    public static func < (lhs: DomainID, rhs: DomainID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}

/// A grant reference (`grant_ref_t`) in the granting domain's grant table.
public struct GrantRef: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ value: UInt32) { self.rawValue = value }

    public var description: String { String(rawValue) }
}

/// An event channel port (`evtchn_port_t`), local to one domain.
public struct EventChannelPort: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ value: UInt32) { self.rawValue = value }

    /// Ports a guest may name: 1 up to the FIFO ABI's limit of 2^17 ports
    /// (the 2-level ABI allows fewer; the hypervisor rejects those at bind).
    /// Port 0 is never a valid channel.
    public static let validRange: ClosedRange<UInt32> = 1...(1 << 17 - 1)

    public var description: String { String(rawValue) }
}

/// Xen's page size for grants and rings: always 4 KiB (io/ring.h
/// XEN_PAGE_SHIFT), whatever the kernel's page size.
public let xenPageSize = 4096

/// The xenbus device states of io/xenbus.h.
public enum XenbusState: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case unknown = 0
    case initialising = 1
    case initWait = 2
    case initialised = 3
    case connected = 4
    case closing = 5
    case closed = 6
    case reconfiguring = 7
    case reconfigured = 8

    /// The text written to a `state` node.
    public var storeValue: String { String(rawValue) }

    public var description: String {
        switch self {
        case .unknown: return "Unknown"
        case .initialising: return "Initialising"
        case .initWait: return "InitWait"
        case .initialised: return "Initialised"
        case .connected: return "Connected"
        case .closing: return "Closing"
        case .closed: return "Closed"
        case .reconfiguring: return "Reconfiguring"
        case .reconfigured: return "Reconfigured"
        }
    }

    /// Parses a `state` node strictly: decimal digits naming a known state.
    public init?(storeValue text: String) {
        guard let value: UInt32 = parseDecimal(text), let state = XenbusState(rawValue: value)
        else { return nil }
        self = state
    }
}

/// Strict decimal parser for store values written by guests: ASCII digits
/// only (no sign, no spaces, no `0x`), at most 20 of them, no overflow.
public func parseDecimal<T: FixedWidthInteger & UnsignedInteger>(_ text: String) -> T? {
    let utf8 = text.utf8
    guard !utf8.isEmpty, utf8.count <= 20 else { return nil }
    var value: T = 0
    for byte in utf8 {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(T(byte - UInt8(ascii: "0")))
        if overflow1 || overflow2 { return nil }
        value = sum
    }
    return value
}
