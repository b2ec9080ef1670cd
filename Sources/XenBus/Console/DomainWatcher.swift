import Synchronization

/// Reports domains coming and going, for daemons that serve every domain
/// (consoled). Watches `@introduceDomain` and `@releaseDomain` and, at start
/// and after every event, lists `/local/domain` and reports the difference
/// (``DomainRoster``).
///
/// `@releaseDomain` fires when a domain shuts down or starts dying, which
/// may be before the toolstack removes `/local/domain/<id>`; and a domain
/// whose console page we still map stays dying until we unmap it, so no
/// later `@releaseDomain` would come. Each known domain's home directory is
/// therefore watched too: its removal triggers a listing (events for nodes
/// below it are ignored without touching the store).
///
/// Listings are coalesced: events arriving during a listing cause one more.
public struct DomainWatcher: Sendable {
    /// xenstored's special watch fired on INTRODUCE.
    public static let introduceWatch = "@introduceDomain"
    /// xenstored's special watch fired when a domain shuts down or dies.
    public static let releaseWatch = "@releaseDomain"

    /// The store to watch.
    public let store: any XenBusStore
    /// The directory listing the domains, `/local/domain`.
    public let domainsPath: String
    /// Whether domain 0 is reported.
    public let includeDomain0: Bool

    /// A watcher over `store`; nothing is registered until ``run(_:)`` or
    /// ``events()``.
    public init(
        store: any XenBusStore, domainsPath: String = "/local/domain",
        includeDomain0: Bool = false
    ) {
        self.store = store
        self.domainsPath = domainsPath
        self.includeDomain0 = includeDomain0
    }

    /// The events as a stream: the domains present at start as
    /// `.introduced`, then every change. Throws a ``XenBusError`` when the
    /// store fails or a special watch ends; ending the iteration stops the
    /// watcher and removes its watches.
    public func events() -> AsyncThrowingStream<DomainEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<DomainEvent, any Error>.makeStream()
        let task = Task { [self] in
            do throws(XenBusError) {
                try await run { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Calls `report` with the domains present at start (as `.introduced`)
    /// and then with every change, until the calling task is cancelled
    /// (then returns) or the store fails or a special watch ends (then
    /// throws). Watches are removed on the way out.
    public func run(_ report: (DomainEvent) async -> Void) async throws(XenBusError) {
        let wakeups = Wakeups()
        var forwarders: [Task<Void, Never>] = []
        var homeWatches: [DomainID: Task<Void, Never>] = [:]
        defer {
            for task in forwarders { task.cancel() }
            for task in homeWatches.values { task.cancel() }
        }
        // Watches first, listing second: a domain introduced in between is
        // seen by the listing that the watch's event causes.
        for path in [Self.introduceWatch, Self.releaseWatch] {
            let events = try await watchStream(path)
            forwarders.append(Task { await wakeups.forward(events, essential: path) })
        }
        var roster = DomainRoster(includeDomain0: includeDomain0)
        var pending = wakeups.stream.makeAsyncIterator()
        repeat {
            if let failure = wakeups.failure { throw failure }
            for event in roster.update(listing: try await storeDirectory(store, domainsPath)) {
                switch event {
                case .introduced(let domain):
                    homeWatches[domain] = watchHome(domain, wakeups)
                case .released(let domain):
                    homeWatches.removeValue(forKey: domain)?.cancel()
                }
                await report(event)
            }
        } while await pending.next() != nil
        if let failure = wakeups.failure { throw failure }
    }

    private func watchStream(_ path: String) async throws(XenBusError)
        -> AsyncThrowingStream<String, any Error>
    {
        do { return try await store.watch(path) } catch {
            throw .store(operation: "watch", path: path, reason: String(describing: error))
        }
    }

    /// Watches `<domains>/<domain>` for its own removal.
    private func watchHome(_ domain: DomainID, _ wakeups: Wakeups) -> Task<Void, Never> {
        let home = "\(domainsPath)/\(domain)"
        return Task { [store] in
            guard let events = try? await store.watch(home) else {
                // Cannot watch (already gone?): list again to find out.
                wakeups.poke()
                return
            }
            // A failing connection also ends the special watches; that is
            // reported there.
            _ = try? await wakeups.forward(events, only: home)
        }
    }
}

/// Wake-ups for the listing loop: at most one pending (bufferingNewest(1)
/// coalesces a burst into one listing), plus the first failure of an
/// essential watch, which ends the stream.
final class Wakeups: Sendable {
    let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let failed = Mutex<XenBusError?>(nil)

    init() {
        (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    var failure: XenBusError? { failed.withLock { $0 } }

    func poke() { continuation.yield() }

    func fail(_ error: XenBusError) {
        failed.withLock { if $0 == nil { $0 = error } }
        continuation.finish()
    }

    /// Pokes for every event of a special watch; its end (unless we are
    /// being cancelled) is a failure.
    func forward(_ events: AsyncThrowingStream<String, any Error>, essential path: String) async {
        var reason = "the watch ended"
        do {
            for try await _ in events { poke() }
        } catch {
            reason = String(describing: error)
        }
        if !Task.isCancelled { fail(.store(operation: "watch", path: path, reason: reason)) }
    }

    /// Pokes for the events of `events` whose path is exactly `path`.
    func forward(_ events: AsyncThrowingStream<String, any Error>, only path: String)
        async throws
    {
        for try await changed in events where changed == path { poke() }
    }
}
