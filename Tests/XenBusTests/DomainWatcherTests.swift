import Testing
import XenBus
import XenBusTesting

/// A store holding domains 0, 1 and 3 (and a stray non-domain name), as
/// xend leaves it.
private func storeWithDomains() -> InMemoryXenBusStore {
    InMemoryXenBusStore([
        "/local/domain/0/name": "Domain-0",
        "/local/domain/1/name": "web",
        "/local/domain/3/name": "db",
        "/local/domain/pool/x": "not a domain",
    ])
}

private struct Lost: Error {}

@Suite("domain discovery for consoled", .timeLimit(.minutes(1)))
struct DomainWatcherTests {
    typealias Events = AsyncThrowingStream<DomainEvent, any Error>.AsyncIterator

    private func next(_ events: inout Events) async throws -> DomainEvent? {
        try await events.next()
    }

    /// Waits until `watches` watches exist and their registration events
    /// have had time to cause their listings, so that the next event a test
    /// sees comes from what the test does next (without this, a late home
    /// watch registration could do the listing a special watch should).
    private func settle(_ store: InMemoryXenBusStore, watches: Int) async throws {
        while store.watchCount < watches { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(100))
    }

    @Test("the roster reports releases then introductions, in ID order")
    func roster() {
        var roster = DomainRoster()
        #expect(
            roster.update(listing: ["0", "7", "2", "x", "-1", "32752"]) == [
                .introduced(DomainID(2)), .introduced(DomainID(7)),
            ])
        #expect(roster.update(listing: ["7", "2"]) == [])
        #expect(
            roster.update(listing: ["9", "2", "4"]) == [
                .released(DomainID(7)), .introduced(DomainID(4)), .introduced(DomainID(9)),
            ])
        #expect(roster.domains == [DomainID(2), DomainID(4), DomainID(9)])
        var withDom0 = DomainRoster(includeDomain0: true)
        #expect(withDom0.update(listing: ["0"]) == [.introduced(DomainID(0))])
    }

    @Test("the initial scan introduces every guest listed, not domain 0")
    func initialScan() async throws {
        let store = storeWithDomains()
        var events = DomainWatcher(store: store).events().makeAsyncIterator()
        #expect(try await next(&events) == .introduced(DomainID(1)))
        #expect(try await next(&events) == .introduced(DomainID(3)))
        var all = DomainWatcher(store: store, includeDomain0: true).events().makeAsyncIterator()
        #expect(try await next(&all) == .introduced(DomainID(0)))
    }

    @Test("@introduceDomain and @releaseDomain each cause a listing")
    func specialWatches() async throws {
        let store = storeWithDomains()
        var events = DomainWatcher(store: store).events().makeAsyncIterator()
        _ = try await next(&events)
        _ = try await next(&events)
        try await settle(store, watches: 4)
        // Written without firing anything the watcher hears, until INTRODUCE.
        store.set("/local/domain/5/name", "new")
        store.fireSpecial(DomainWatcher.introduceWatch)
        #expect(try await next(&events) == .introduced(DomainID(5)))
        // A release event lists too (here it finds an unannounced domain).
        try await settle(store, watches: 5)
        store.set("/local/domain/6/name", "quiet")
        store.fireSpecial(DomainWatcher.releaseWatch)
        #expect(try await next(&events) == .introduced(DomainID(6)))
    }

    @Test("a domain is released when its directory goes, not at @releaseDomain before that")
    func release() async throws {
        let store = storeWithDomains()
        var events = DomainWatcher(store: store).events().makeAsyncIterator()
        _ = try await next(&events)
        _ = try await next(&events)
        try await settle(store, watches: 4)
        // Domain 3 shut down: xenstored fires, xend has not removed it yet.
        store.fireSpecial(DomainWatcher.releaseWatch)
        store.set("/local/domain/8/name", "marker")
        store.fireSpecial(DomainWatcher.introduceWatch)
        #expect(try await next(&events) == .introduced(DomainID(8)), "3 is still listed")
        // xend removes the directory; no special watch fires for that.
        try await settle(store, watches: 5)
        store.delete("/local/domain/3")
        #expect(try await next(&events) == .released(DomainID(3)))
        // Writes below a home (filtered without a listing) report nothing.
        store.set("/local/domain/1/data/x", "1")
        store.delete("/local/domain/1/data")
        store.delete("/local/domain/8")
        #expect(try await next(&events) == .released(DomainID(8)))
    }

    @Test("a domain that appears and vanishes between events is never reported")
    func transient() async throws {
        let store = storeWithDomains()
        var events = DomainWatcher(store: store).events().makeAsyncIterator()
        _ = try await next(&events)
        _ = try await next(&events)
        store.set("/local/domain/5/name", "brief")
        store.delete("/local/domain/5")
        store.set("/local/domain/7/name", "stays")
        store.fireSpecial(DomainWatcher.introduceWatch)
        store.fireSpecial(DomainWatcher.releaseWatch)
        #expect(try await next(&events) == .introduced(DomainID(7)))
        store.delete("/local/domain/1")
        #expect(try await next(&events) == .released(DomainID(1)), "nothing about 5 in between")
    }

    @Test("a lost connection ends the stream with a store error")
    func watchFailure() async throws {
        let store = storeWithDomains()
        var events = DomainWatcher(store: store).events().makeAsyncIterator()
        _ = try await next(&events)
        _ = try await next(&events)
        store.failWatches(Lost())
        await #expect {
            _ = try await next(&events)
        } throws: { error in
            guard case .store(let operation, _, _)? = error as? XenBusError else { return false }
            return operation == "watch"
        }
    }

    @Test("stopping the iteration removes every watch")
    func cancellation() async throws {
        let store = storeWithDomains()
        let consumer = Task {
            var events = DomainWatcher(store: store).events().makeAsyncIterator()
            _ = try await events.next()
            _ = try await events.next()
            try await Task.sleep(for: .seconds(60))
        }
        // Two special watches and one home watch per guest.
        while store.watchCount < 4 { try await Task.sleep(for: .milliseconds(5)) }
        consumer.cancel()
        while store.watchCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(store.watchCount == 0)
    }
}
