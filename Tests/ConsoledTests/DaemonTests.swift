import Consoled
import DataPath
import Logging
import Synchronization
import Testing
import XenBus
import XenBusTesting

@Suite("consoled: the daemon over an in-memory store", .serialized)
struct DaemonTests {
    @Test(
        "a domain is served once its console nodes appear; a dying domain's console is dropped on @releaseDomain"
    )
    func introduceRetryAndDying() async throws {
        let harness = try Harness()
        let guest = try FakeGuest(
            domain: DomainID(5), grants: harness.grants, events: harness.events)
        let store = InMemoryXenBusStore(["/local/domain/5/name": "demo"])
        let dying = DyingSet()
        var logger = Logger(label: "daemon-test")
        logger.logLevel = .critical
        let daemon = ConsoleDaemon(
            store: store, grants: harness.grants, server: harness.server, logger: logger,
            dyingDomains: { dying.value }, consoleRef: guest.grant.refs[0])
        let task = Task { try? await daemon.run() }
        // Introduced without console/port: not served, tried again when
        // the node appears.
        store.fireSpecial("@introduceDomain")
        try await Task.sleep(for: .milliseconds(200))
        #expect(harness.onWorker { $0.domains } == [])
        store.set("/local/domain/5/console/port", "\(guest.port.rawValue)")
        #expect(await eventuallyAsync { harness.onWorker { $0.domains } == [DomainID(5)] })
        try guest.write(Array("hello from demo\n".utf8))
        #expect(await eventuallyAsync { harness.logText("demo").contains("hello from demo") })
        // Destroyed: Xen reports it dying while its home still exists.
        dying.set([5])
        store.fireSpecial("@releaseDomain")
        #expect(await eventuallyAsync { harness.onWorker { $0.domains } == [] })
        #expect(harness.logText("demo").contains("being destroyed"))
        task.cancel()
        await harness.stop()
    }
}

final class DyingSet: Sendable {
    private let domains = Mutex<Set<UInt16>>([])
    var value: Set<UInt16> { domains.withLock { $0 } }
    func set(_ new: Set<UInt16>) { domains.withLock { $0 = new } }
}
