/// One entry of a node's access list, written `n0`, `r5`, `w3` or `b1` on
/// the wire.
///
/// The first entry of a list names the owner (who always has full access)
/// and, through its letter, the access of every domain not listed after it.
/// Dom0 always has full access.
public struct XenStorePermission: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Access: Sendable, Equatable, Hashable {
        case none
        case read
        case write
        case both

        /// The wire letter.
        public var letter: Character {
            switch self {
            case .none: "n"
            case .read: "r"
            case .write: "w"
            case .both: "b"
            }
        }

        public var canRead: Bool { self == .read || self == .both }
        public var canWrite: Bool { self == .write || self == .both }
    }

    public var domid: UInt32
    public var access: Access

    public init(domid: UInt32, access: Access) {
        self.domid = domid
        self.access = access
    }

    /// Parses `n0`, `r5`, `w3`, `b1`.
    ///
    /// - Throws: ``XenStoreError/invalidPermission(_:)``.
    public init(parsing text: some StringProtocol) throws(XenStoreError) {
        let utf8 = Array(text.utf8)
        guard let letter = utf8.first, utf8.count >= 2, utf8.count <= 11 else {
            throw .invalidPermission(String(text))
        }
        switch letter {
        case UInt8(ascii: "n"): access = .none
        case UInt8(ascii: "r"): access = .read
        case UInt8(ascii: "w"): access = .write
        case UInt8(ascii: "b"): access = .both
        default: throw .invalidPermission(String(text))
        }
        var value: UInt32 = 0
        for digit in utf8.dropFirst() {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else {
                throw .invalidPermission(String(text))
            }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt32(digit - 48))
            guard !overflow1, !overflow2 else { throw .invalidPermission(String(text)) }
            value = sum
        }
        domid = value
    }

    /// The wire form, e.g. `r5`.
    public var description: String { "\(access.letter)\(domid)" }
}

extension [XenStorePermission] {
    /// The access a domain gets from this list, by xenstored's rule: dom0
    /// and the owner get both; otherwise the first later entry naming the
    /// domain; otherwise the owner entry's letter.
    public func access(for domid: UInt32) -> XenStorePermission.Access {
        guard let owner = first else { return .none }
        if domid == 0 || owner.domid == domid { return .both }
        if let entry = dropFirst().first(where: { $0.domid == domid }) { return entry.access }
        return owner.access
    }
}
