import DataPath
import LinuxSystem
import Synchronization
import SystemPackage
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Counts its serve calls; optionally runs a closure inside serve (on the
/// worker's thread).
final class CountingEndpoint: DataPathEndpoint {
    let calls = Atomic<Int>(0)
    var onServe: ((CountingEndpoint) -> Void)?

    func serve(budget: Int) throws(XenBusError) -> Bool {
        calls.add(1, ordering: .relaxed)
        onServe?(self)
        return false
    }
}

/// Waits up to `seconds` for `condition`.
func eventually(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Double(monotonicNanoseconds()) / 1e9 + seconds
    while !condition() {
        if Double(monotonicNanoseconds()) / 1e9 > deadline { return false }
        usleep(1000)
    }
    return true
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Sendable box for handing a non-Sendable endpoint to a posted job in a
/// test (the job runs on the worker's thread, which then owns it).
struct Handover<T>: @unchecked Sendable { let value: T }

@Suite("data-path worker: endpoints attached and detached while it runs")
struct RuntimeAttachTests {
    let events = FakeEventChannelHub()

    @Test("a job posted from another thread attaches a ring: served at once, then on every notify")
    func postedPortAttach() async throws {
        let channel = try events.open(domain: DomainID(0))
        let guest = try events.open(domain: DomainID(4))
        let guestPort = try guest.allocateUnbound(remoteDomain: DomainID(0))
        let worker = try DataPathWorker(name: "attach-test", eventChannel: channel) { _, error in
            Issue.record("fault: \(error)")
        }
        try worker.start()
        let endpoint = CountingEndpoint()
        let binding = try EventChannelBinding(
            channel: channel, remoteDomain: DomainID(4), remotePort: guestPort)
        let attached = Atomic<Bool>(false)
        let handover = Handover(value: endpoint)
        let onThread = Atomic<Bool>(false)
        let posted = worker.post { worker in
            onThread.store(worker.isWorkerThread, ordering: .relaxed)
            worker.attach(handover.value, port: binding.port)
            attached.store(true, ordering: .releasing)
        }
        #expect(posted)
        #expect(eventually { endpoint.calls.load(ordering: .relaxed) == 1 })
        let wasAttached = attached.load(ordering: .acquiring)
        let wasOnThread = onThread.load(ordering: .relaxed)
        #expect(wasAttached && wasOnThread)
        #expect(!worker.isWorkerThread)
        try guest.notify(guestPort)
        #expect(eventually { endpoint.calls.load(ordering: .relaxed) == 2 })
        await worker.stop()
        let late = worker.post { _ in Issue.record("a job ran after stop") }
        #expect(!late)
    }

    @Test("an endpoint detached from inside serve is never called again; its slot is reused")
    func detachFromServe() async throws {
        let channel = try events.open(domain: DomainID(0))
        let worker = try DataPathWorker(name: "detach-test", eventChannel: channel) { _, error in
            Issue.record("a detach must not report a fault: \(error)")
        }
        let (left, right) = try UnixSocket.pair()
        defer {
            try? left.close()
            try? right.close()
        }
        let victim = CountingEndpoint()
        let victimID = try worker.attach(victim, descriptor: left)
        let killer = CountingEndpoint()
        let reused = Mutex<EndpointID?>(nil)
        let late = CountingEndpoint()
        killer.onServe = { _ in
            guard reused.withLock({ $0 }) == nil else { return }
            worker.detach(victimID)
            // The freed slot goes to the next endpoint attached.
            let id = try? worker.attach(late, descriptor: right, events: .writable)
            reused.withLock { $0 = id }
        }
        // The killer is served in the first round, before or after the
        // victim: either way the victim's readable socket would keep
        // waking it if it were still attached.
        let quiet = try WakeupEvent()
        try worker.attach(killer, descriptor: quiet.descriptor)
        _ = try right.writeAll([1, 2, 3])
        try worker.start()
        #expect(eventually { reused.withLock { $0 } != nil })
        let callsAtDetach = victim.calls.load(ordering: .relaxed)
        usleep(50_000)
        #expect(victim.calls.load(ordering: .relaxed) == callsAtDetach)
        #expect(callsAtDetach <= 1)
        #expect(reused.withLock { $0 } == victimID)
        // The late endpoint waits for .writable on a socket that is
        // writable: level triggered, it is served every round.
        #expect(eventually { late.calls.load(ordering: .relaxed) > 3 })
        await worker.stop()
    }

    @Test("setEvents moves a descriptor endpoint between readable and writable interest")
    func changeInterest() async throws {
        let channel = try events.open(domain: DomainID(0))
        let worker = try DataPathWorker(name: "events-test", eventChannel: channel) { _, error in
            Issue.record("fault: \(error)")
        }
        let (left, right) = try UnixSocket.pair()
        defer {
            try? left.close()
            try? right.close()
        }
        let endpoint = CountingEndpoint()
        let id = try worker.attach(endpoint, descriptor: left, events: .readable)
        try worker.start()
        // Nothing to read: served once at the start, then quiet.
        #expect(eventually { endpoint.calls.load(ordering: .relaxed) == 1 })
        usleep(50_000)
        #expect(endpoint.calls.load(ordering: .relaxed) == 1)
        worker.post { worker in try? worker.setEvents(.writable, for: id) }
        #expect(eventually { endpoint.calls.load(ordering: .relaxed) > 10 })
        let changed = Atomic<Bool>(false)
        worker.post { worker in
            try? worker.setEvents(.readable, for: id)
            changed.store(true, ordering: .releasing)
        }
        #expect(eventually { changed.load(ordering: .acquiring) })
        usleep(20_000)
        let quiet = endpoint.calls.load(ordering: .relaxed)
        usleep(50_000)
        #expect(endpoint.calls.load(ordering: .relaxed) <= quiet + 1)
        await worker.stop()
    }

    @Test("wake serves another endpoint in the next round without any event")
    func wakeAnother() async throws {
        let channel = try events.open(domain: DomainID(0))
        let worker = try DataPathWorker(name: "wake-test", eventChannel: channel) { _, error in
            Issue.record("fault: \(error)")
        }
        let sleeper = CountingEndpoint()
        let event = try WakeupEvent()
        let sleeperID = try worker.attach(sleeper, descriptor: event.descriptor)
        try worker.start()
        #expect(eventually { sleeper.calls.load(ordering: .relaxed) == 1 })
        worker.post { worker in worker.wake(sleeperID) }
        #expect(eventually { sleeper.calls.load(ordering: .relaxed) == 2 })
        await worker.stop()
    }
}
