/// A domain appearing in or vanishing from `/local/domain`.
public enum DomainEvent: Sendable, Hashable, CustomStringConvertible {
    /// The domain is listed and was not before.
    case introduced(DomainID)
    /// The domain was listed and no longer is.
    case released(DomainID)

    public var description: String {
        switch self {
        case .introduced(let domain): return "introduced \(domain)"
        case .released(let domain): return "released \(domain)"
        }
    }
}

/// The set of known domains and what a new listing of `/local/domain`
/// changes about it. Pure: ``DomainWatcher`` feeds it listings.
public struct DomainRoster: Sendable, Equatable {
    /// Domains listed at the last update.
    public private(set) var domains: Set<DomainID> = []
    /// Whether domain 0 is reported (consoled serves guests only).
    public let includeDomain0: Bool

    /// An empty roster.
    public init(includeDomain0: Bool = false) {
        self.includeDomain0 = includeDomain0
    }

    /// Takes the child names of `/local/domain` and returns the releases,
    /// then the introductions, each in ID order. Names that are not domain
    /// IDs are ignored. A domain that came and went between two listings is
    /// never reported; one that went and came back (an ID reused between
    /// listings) is not either.
    public mutating func update(listing: [String]) -> [DomainEvent] {
        let listed = Set(
            listing.compactMap(DomainID.init(parsing:)).filter {
                includeDomain0 || $0.rawValue != 0
            })
        let released = domains.subtracting(listed).sorted().map(DomainEvent.released)
        let introduced = listed.subtracting(domains).sorted().map(DomainEvent.introduced)
        domains = listed
        return released + introduced
    }
}
