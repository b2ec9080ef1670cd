/// The `type` field of a xenstore message header (`enum xsd_sockmsg_type`
/// in xs_wire.h). A struct rather than an enum so an unknown value from the
/// peer is representable instead of a trap.
public struct XenStoreMessageType: RawRepresentable, Hashable, Sendable,
    CustomStringConvertible
{
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let control = Self(rawValue: 0)
    /// The deprecated name of ``control``.
    public static let debug = control
    public static let directory = Self(rawValue: 1)
    public static let read = Self(rawValue: 2)
    public static let getPermissions = Self(rawValue: 3)
    public static let watch = Self(rawValue: 4)
    public static let unwatch = Self(rawValue: 5)
    public static let transactionStart = Self(rawValue: 6)
    public static let transactionEnd = Self(rawValue: 7)
    public static let introduce = Self(rawValue: 8)
    public static let release = Self(rawValue: 9)
    public static let getDomainPath = Self(rawValue: 10)
    public static let write = Self(rawValue: 11)
    public static let mkdir = Self(rawValue: 12)
    public static let remove = Self(rawValue: 13)
    public static let setPermissions = Self(rawValue: 14)
    public static let watchEvent = Self(rawValue: 15)
    public static let error = Self(rawValue: 16)
    public static let isDomainIntroduced = Self(rawValue: 17)
    public static let resume = Self(rawValue: 18)
    public static let setTarget = Self(rawValue: 19)
    // 20 was XS_RESTRICT, removed from Xen.
    public static let resetWatches = Self(rawValue: 21)
    public static let directoryPart = Self(rawValue: 22)
    /// Guaranteed never to be a valid type (`XS_INVALID`).
    public static let invalid = Self(rawValue: 0xffff)

    static let names: [UInt32: String] = [
        0: "CONTROL", 1: "DIRECTORY", 2: "READ", 3: "GET_PERMS", 4: "WATCH", 5: "UNWATCH",
        6: "TRANSACTION_START", 7: "TRANSACTION_END", 8: "INTRODUCE", 9: "RELEASE",
        10: "GET_DOMAIN_PATH", 11: "WRITE", 12: "MKDIR", 13: "RM", 14: "SET_PERMS",
        15: "WATCH_EVENT", 16: "ERROR", 17: "IS_DOMAIN_INTRODUCED", 18: "RESUME",
        19: "SET_TARGET", 21: "RESET_WATCHES", 22: "DIRECTORY_PART",
    ]

    /// The xs_wire.h name without `XS_`, or `type N` for an unknown value.
    public var description: String { Self.names[rawValue] ?? "type \(rawValue)" }
}

/// xenstore protocol limits from xs_wire.h.
public enum XenStoreLimits {
    /// Largest payload in either direction (`XENSTORE_PAYLOAD_MAX`);
    /// xenstored drops a connection that exceeds it.
    public static let payloadMax = 4096
    /// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
    public static let absolutePathMax = 3072
    /// Longest relative path (`XENSTORE_REL_PATH_MAX`).
    public static let relativePathMax = 2048
    /// Size of `struct xsd_sockmsg`.
    public static let headerSize = 16
}

/// One xenstore message: the `struct xsd_sockmsg` header fields and the
/// payload that follows it.
public struct XenStoreMessage: Sendable, Equatable {
    public var type: XenStoreMessageType
    /// Echoed by the daemon in its reply; 0 in watch events.
    public var requestID: UInt32
    /// The transaction the request belongs to, 0 for none.
    public var transactionID: UInt32
    public var payload: [UInt8]

    public init(
        type: XenStoreMessageType, requestID: UInt32 = 0, transactionID: UInt32 = 0,
        payload: [UInt8]
    ) {
        self.type = type
        self.requestID = requestID
        self.transactionID = transactionID
        self.payload = payload
    }

    /// The header and payload as sent on the wire (all fields little-endian).
    ///
    /// - Throws: ``XenStoreError/tooLarge(what:size:limit:)`` if the payload
    ///   exceeds ``XenStoreLimits/payloadMax``.
    public func encoded() throws(XenStoreError) -> [UInt8] {
        guard payload.count <= XenStoreLimits.payloadMax else {
            throw .tooLarge(
                what: "\(type) payload", size: payload.count, limit: XenStoreLimits.payloadMax)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(XenStoreLimits.headerSize + payload.count)
        for field in [type.rawValue, requestID, transactionID, UInt32(payload.count)] {
            withUnsafeBytes(of: field.littleEndian) { bytes.append(contentsOf: $0) }
        }
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// The NUL-terminated strings of the payload, without their NULs. A final
    /// string lacking its NUL is still returned (the daemon's READ reply and
    /// sloppy peers).
    public var strings: [String] { XenStorePayload.strings(payload) }
}

/// Builds and splits xenstore payloads: sequences of NUL-terminated strings.
public enum XenStorePayload {
    /// Each string followed by a NUL.
    public static func strings(_ parts: [String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for part in parts {
            bytes.append(contentsOf: part.utf8)
            bytes.append(0)
        }
        return bytes
    }

    /// The raw NUL-terminated fields of a payload; a trailing field without a
    /// NUL counts as a field, an empty payload has none.
    public static func fields(_ payload: [UInt8]) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = payload.startIndex
        for index in payload.indices where payload[index] == 0 {
            result.append(payload[start..<index])
            start = index + 1
        }
        if start < payload.endIndex { result.append(payload[start...]) }
        return result
    }

    /// ``fields(_:)`` decoded as UTF-8 (invalid bytes become U+FFFD).
    public static func strings(_ payload: [UInt8]) -> [String] {
        fields(payload).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the payload is exactly `strings` with a NUL after each.
    public static func isExactly(_ payload: [UInt8], _ parts: [String]) -> Bool {
        payload == strings(parts)
    }
}
