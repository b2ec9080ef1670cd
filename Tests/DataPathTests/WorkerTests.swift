import DataPath
import EchoBackend
import LinuxSystem
import Synchronization
import SystemPackage
import Testing
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

let guestDomain = DomainID(3)
let backendDomain = DomainID(0)

/// A guest's echo ring on fake grants and event channels, with the
/// backend's side mapped and bound on `backendChannel`.
struct EchoPair {
    let grant: FakeGrantTable.Grant
    let guestChannel: FakeEventChannel
    let guestPort: EventChannelPort
    let mapping: GrantMapping
    let binding: EventChannelBinding

    init(grants: FakeGrantTable, events: FakeEventChannelHub, backendChannel: any EventChannel)
        throws
    {
        grant = grants.grant(from: guestDomain, pages: 1, writable: true)
        guestChannel = try events.open(domain: guestDomain)
        guestPort = try guestChannel.allocateUnbound(remoteDomain: backendDomain)
        mapping = try grants.map(domain: guestDomain, refs: grant.refs, writable: true)
        binding = try EventChannelBinding(
            channel: backendChannel, remoteDomain: guestDomain, remotePort: guestPort)
    }

    func frontend(total: Int) throws -> EchoFrontend {
        try EchoFrontend(
            initializing: grant.bytes, keepAlive: nil, channel: guestChannel, port: guestPort,
            total: total)
    }
}

/// An endpoint that always has more work: a ring that never runs dry.
final class FloodEndpoint: DataPathEndpoint {
    let calls = Atomic<Int>(0)
    let largestBudget = Atomic<Int>(0)

    func serve(budget: Int) throws(XenBusError) -> Bool {
        calls.add(1, ordering: .relaxed)
        if budget > largestBudget.load(ordering: .relaxed) {
            largestBudget.store(budget, ordering: .relaxed)
        }
        return true
    }
}

@Suite("data-path worker", .timeLimit(.minutes(2)))
struct WorkerTests {
    let grants = FakeGrantTable()
    let events = FakeEventChannelHub()

    @Test("an echo ring through the worker: every request answered once, no lost wakeup")
    func echoThroughWorker() async throws {
        let channel = try events.open(domain: backendDomain)
        let pair = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let front = try pair.frontend(total: 20_000)
        let worker = try DataPathWorker(name: "echo-test", eventChannel: channel, budget: 16) {
            _, error in Issue.record("fault: \(error)")
        }
        let ring = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(mapping: pair.mapping), journal: nil)
        worker.attach(EchoEndpoint(ring: ring, binding: pair.binding), port: pair.binding.port)
        try worker.start()
        front.pollSeconds = 1
        let outcome = await front.runOnThread()
        await worker.stop()
        #expect(outcome.isClean, "\(outcome)")
        #expect(outcome.answered == 20_000)
        #expect(worker.statistics.wakeups > 0)
    }

    @Test("a ring that never runs dry gets one budget per round and cannot starve another")
    func budgetKeepsRingsFair() async throws {
        let channel = try events.open(domain: backendDomain)
        let pair = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let worker = try DataPathWorker(name: "budget-test", eventChannel: channel, budget: 8) {
            _, error in Issue.record("fault: \(error)")
        }
        let flood = FloodEndpoint()
        // The flood's own descriptor: an eventfd that stays readable.
        let always = try WakeupEvent()
        always.signal()
        try worker.attach(flood, descriptor: always.descriptor)
        let ring = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(mapping: pair.mapping), journal: nil)
        worker.attach(EchoEndpoint(ring: ring, binding: pair.binding), port: pair.binding.port)
        try worker.start()
        // Let the flood run, then ask the echo ring for work.
        while flood.calls.load(ordering: .relaxed) < 1000 { usleep(1000) }
        let front = try pair.frontend(total: 50)
        front.pollSeconds = 1
        let before = flood.calls.load(ordering: .relaxed)
        let outcome = await front.runOnThread()
        let during = flood.calls.load(ordering: .relaxed) - before
        await worker.stop()
        #expect(outcome.isClean && outcome.answered == 50, "\(outcome)")
        #expect(flood.largestBudget.load(ordering: .relaxed) == 8)
        #expect(worker.statistics.budgetExhausted >= 1000)
        // The flood kept its rounds while the echo ring was served too.
        #expect(during > 0)
    }

    @Test("two rings on one worker, one flooded by its guest: the other is served all along")
    func floodedRingDoesNotStarveTheOther() async throws {
        let channel = try events.open(domain: backendDomain)
        let flooded = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let quiet = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let worker = try DataPathWorker(name: "flood-test", eventChannel: channel, budget: 8) {
            _, error in Issue.record("fault: \(error)")
        }
        for pair in [flooded, quiet] {
            let ring = JournaledBackRing<EchoRequest, EchoResponse>(
                ring: try BackRing(mapping: pair.mapping), journal: nil)
            worker.attach(EchoEndpoint(ring: ring, binding: pair.binding), port: pair.binding.port)
        }
        let flood = try flooded.frontend(total: 100_000_000)
        let calm = try quiet.frontend(total: 2000)
        calm.pollSeconds = 1
        calm.stallSeconds = 20
        try worker.start()
        async let flooding = flood.runOnThread(name: "flood")
        while flood.progress < 2000 { try await Task.sleep(for: .milliseconds(1)) }
        let before = flood.progress
        let outcome = await calm.runOnThread(name: "calm")
        let during = flood.progress - before
        flood.cancel()
        let floodOutcome = await flooding
        await worker.stop()
        #expect(outcome.isClean && outcome.answered == 2000, "\(outcome)")
        #expect(floodOutcome.failure == "cancelled" && floodOutcome.duplicates == 0)
        #expect(during > 0, "the flood went on while the other ring was served")
    }

    @Test("stop returns while the worker is blocked in epoll, and endpoints are not called again")
    func stopWhileBlocked() async throws {
        let channel = try events.open(domain: backendDomain)
        let pair = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let worker = try DataPathWorker(name: "stop-test", eventChannel: channel) { _, _ in }
        let ring = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(mapping: pair.mapping), journal: nil)
        worker.attach(EchoEndpoint(ring: ring, binding: pair.binding), port: pair.binding.port)
        try worker.start()
        try await Task.sleep(for: .milliseconds(50))
        let calls = worker.statistics.serveCalls
        // The bound is loose: resuming this task waits for a cooperative
        // thread, which other suites' tests may hold for seconds.
        let started = ContinuousClock.now
        await worker.stop()
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(worker.isFinished)
        // A notification after the stop reaches nobody.
        try pair.guestChannel.notify(pair.guestPort)
        try await Task.sleep(for: .milliseconds(20))
        #expect(worker.statistics.serveCalls == calls)
    }

    @Test("a stop before start returns at once")
    func stopUnstarted() async throws {
        let channel = try events.open(domain: backendDomain)
        let worker = try DataPathWorker(name: "idle", eventChannel: channel) { _, _ in }
        await worker.stop()
        #expect(!worker.isFinished)
    }

    @Test("an endpoint that faults is detached and reported; the others go on")
    func faultIsContained() async throws {
        let channel = try events.open(domain: backendDomain)
        let good = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let bad = try EchoPair(grants: grants, events: events, backendChannel: channel)
        let faults = Mutex<[EndpointID]>([])
        let worker = try DataPathWorker(name: "fault-test", eventChannel: channel) { id, _ in
            faults.withLock { $0.append(id) }
        }
        let goodRing = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(mapping: good.mapping), journal: nil)
        worker.attach(EchoEndpoint(ring: goodRing, binding: good.binding), port: good.binding.port)
        // The hostile guest publishes a producer index far past its ring.
        _ = try FrontRing<EchoRequest, EchoResponse>(initializing: bad.grant.bytes)
        bad.grant.bytes.storeBytes(of: UInt32(5000), toByteOffset: 0, as: UInt32.self)
        let badRing = JournaledBackRing<EchoRequest, EchoResponse>(
            ring: try BackRing(mapping: bad.mapping), journal: nil)
        let badID = worker.attach(
            EchoEndpoint(ring: badRing, binding: bad.binding), port: bad.binding.port)
        try worker.start()
        let front = try good.frontend(total: 500)
        front.pollSeconds = 1
        let outcome = await front.runOnThread()
        await worker.stop()
        #expect(outcome.isClean && outcome.answered == 500, "\(outcome)")
        #expect(faults.withLock { $0 } == [badID])
    }
}
