import DataPath
import Logging
import XenBus

/// consoled's control side: finds every domain with a PV console through
/// ``DomainWatcher`` (`@introduceDomain`, `@releaseDomain`), maps its
/// console page (grant ref 0, which the domain builder seeds for dom0:
/// docs/CONSOLE.md), binds `console/port` on the worker's own event
/// channel handle and hands both to the ``ConsoleServer`` on the worker's
/// thread. A released domain's console is dropped (its page unmapped, so
/// Xen can finish destroying it).
///
/// At start the watcher reports every running domain, so a restarted
/// consoled picks them all up again; the ring indices live in the page,
/// so output a guest wrote while no consoled ran is read at once.
public final class ConsoleDaemon: Sendable {
    public let store: any XenBusStore
    public let grants: any GrantTable
    public let server: ConsoleServer
    let logger: Logger
    let dyingDomains: (@Sendable () throws -> Set<UInt16>)?
    /// The grant entry the domain builder seeds with the console page for
    /// dom0 (`GNTTAB_RESERVED_CONSOLE`); tests pass their fake's ref.
    let consoleRef: GrantRef

    /// `console/type` values served (as xenconsoled: absent or this).
    public static let servedTypes: Set<String> = ["xenconsoled"]

    /// `dyingDomains` lists the domains Xen reports dying (destroyed but
    /// kept for our mapping); their consoles are dropped on every
    /// `@releaseDomain`, before xend removes their homes.
    public init(
        store: any XenBusStore, grants: any GrantTable, server: ConsoleServer, logger: Logger,
        dyingDomains: (@Sendable () throws -> Set<UInt16>)? = nil,
        consoleRef: GrantRef = GrantRef(rawValue: 0)
    ) {
        self.consoleRef = consoleRef
        self.store = store
        self.grants = grants
        self.server = server
        self.logger = logger
        self.dyingDomains = dyingDomains
    }

    /// Serves consoles until the watch fails (then throws) or the task is
    /// cancelled (then returns).
    public func run() async throws(ConsoledError) {
        let watcher = DomainWatcher(store: store)
        var setups: [DomainID: Task<Void, Never>] = [:]
        let reaper = Task { await dropDying() }
        defer {
            reaper.cancel()
            for task in setups.values { task.cancel() }
        }
        do throws(XenBusError) {
            try await watcher.run { event in
                switch event {
                case .introduced(let domain):
                    setups[domain]?.cancel()
                    setups[domain] = Task { await self.serveUntilSetUp(domain) }
                case .released(let domain):
                    setups.removeValue(forKey: domain)?.cancel()
                    let server = self.server
                    server.worker.post { _ in server.removeDomain(domain) }
                }
            }
        } catch {
            throw .xen("watching domains: \(error)")
        }
    }

    /// On every `@releaseDomain`: drops the consoles of dying domains, so
    /// Xen can finish destroying them (our grant mapping holds their page).
    private func dropDying() async {
        guard let dyingDomains, let events = try? await store.watch(DomainWatcher.releaseWatch)
        else { return }
        do {
            for try await _ in events {
                let dying: Set<UInt16>
                do {
                    dying = try dyingDomains()
                } catch {
                    logger.warning("listing dying domains: \(error)")
                    continue
                }
                guard !dying.isEmpty else { continue }
                let server = self.server
                server.worker.post { _ in
                    for domain in server.domains where dying.contains(domain.rawValue) {
                        server.removeDomain(domain, reason: "the domain is being destroyed")
                    }
                }
            }
        } catch {
            // The store connection ended: DomainWatcher reports that.
        }
    }

    /// Sets a domain's console up; when its nodes are not there yet (or
    /// the map fails), tries again on every change under `console/`.
    private func serveUntilSetUp(_ domain: DomainID) async {
        var lastProblem = ""
        let path = "/local/domain/\(domain)/console"
        let changes = try? await store.watch(path)
        repeat {
            if Task.isCancelled { return }
            switch await setUp(domain) {
            case .none: return
            case .some(let problem):
                if problem != lastProblem {
                    logger.warning(
                        "domain \(domain): \(problem); trying again when \(path) changes")
                    lastProblem = problem
                }
            }
            guard let changes else { return }
            var iterator = changes.makeAsyncIterator()
            guard (try? await iterator.next()) != nil else { return }
        } while true
    }

    /// nil when served (or deliberately not), else what is missing.
    private func setUp(_ domain: DomainID) async -> String? {
        let base = "/local/domain/\(domain)"
        do {
            if let type = try await store.read("\(base)/console/type"),
                !Self.servedTypes.contains(type)
            {
                logger.info("domain \(domain): console type '\(type)' is not ours")
                return nil
            }
            guard let portText = try await store.read("\(base)/console/port") else {
                return "no console/port"
            }
            guard let port = UInt32(portText), port > 0 else {
                return "console/port holds '\(ConsoleText.printable(portText, limit: 20))'"
            }
            let name = try await store.read("\(base)/name") ?? "domain-\(domain)"
            let mapping = try grants.map(
                domain: domain, refs: [consoleRef], writable: true)
            let binding = try EventChannelBinding(
                channel: server.worker.eventChannel, remoteDomain: domain,
                remotePort: EventChannelPort(rawValue: port))
            // Released meanwhile: its removal is posted already; posting the
            // add after it would serve a dead domain.
            if Task.isCancelled { return nil }
            let server = self.server
            let logger = self.logger
            // False only once the worker has stopped: nothing left to serve.
            _ = server.worker.post { _ in
                do throws(ConsoledError) {
                    try server.addDomain(domain, name: name, mapping: mapping, binding: binding)
                    logger.info("serving the console of \(name) (domain \(domain), port \(port))")
                } catch {
                    logger.error("domain \(domain): \(error)")
                }
            }
            return nil
        } catch {
            return "\(error)"
        }
    }
}
