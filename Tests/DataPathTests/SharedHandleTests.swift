import DataPath
import EchoBackend
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

@Suite("one event channel handle, two rings", .timeLimit(.minutes(2)))
struct SharedHandleTests {
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()

    @Test(
        "the old pattern loses ring B's wakeup when ring A's thread reads it; the worker serves B")
    func sharedHandle() async throws {
        // The old documented pattern: each ring's thread polls the shared
        // handle, takes `pending()`, unmasks and drains its own ring.
        let shared = try events.open(domain: backendDomain)
        let ringA = try EchoPair(grants: grants, events: events, backendChannel: shared)
        let ringB = try EchoPair(grants: grants, events: events, backendChannel: shared)
        var frontB = try ManualFrontend(ringB.grant.bytes)
        let backB = try BackRing<EchoRequest, EchoResponse>(mapping: ringB.mapping)
        try frontB.send(1)
        try ringB.guestChannel.notify(ringB.guestPort)

        // Ring A's thread wakes first and takes the port: it is B's.
        let taken = try shared.pending()
        #expect(taken == ringB.binding.port)
        try shared.unmask(taken)
        // It drains ring A (empty) and sleeps again. Ring B's thread polls:
        // nothing is pending any more, so B's request is never served.
        var descriptor = pollfd(
            fd: shared.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
        #expect(poll(&descriptor, 1, 100) == 0, "the wakeup for ring B is gone")
        let waiting = try backB.unconsumedRequests()
        #expect(waiting == 1, "ring B's request waits unserved")
        _ = consume backB

        _ = consume frontB

        // The runtime: one worker owns the handle and routes each port to
        // the ring bound to it. Both frontends (starting their rings
        // afresh) notify in whatever interleaving their threads produce;
        // every wakeup reaches its own ring.
        let worker = try DataPathWorker(name: "shared", eventChannel: shared) { _, error in
            Issue.record("fault: \(error)")
        }
        let frontA = try ringA.frontend(total: 5000)
        let frontB2 = try ringB.frontend(total: 5000)
        for pair in [ringA, ringB] {
            let ring = JournaledBackRing<EchoRequest, EchoResponse>(
                ring: try BackRing(mapping: pair.mapping), journal: nil)
            worker.attach(EchoEndpoint(ring: ring, binding: pair.binding), port: pair.binding.port)
        }
        try worker.start()
        frontA.pollSeconds = 1
        frontB2.pollSeconds = 1
        async let outcomeA = frontA.runOnThread(name: "front-a")
        async let outcomeB = frontB2.runOnThread(name: "front-b")
        let (a, b) = await (outcomeA, outcomeB)
        await worker.stop()
        #expect(a.isClean && a.answered == 5000, "\(a)")
        #expect(b.isClean && b.answered == 5000, "\(b)")
        #expect(worker.statistics.strayPorts == 0)
    }
}
