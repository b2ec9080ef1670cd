import LinuxSystem
import Synchronization
import XenBus

#if canImport(Glibc)
    import Glibc
#endif

/// The guest side of an echo ring, for the selftest and the tests: sends
/// `total` requests as fast as the ring takes them and checks that every
/// one is answered exactly once with the right value. A response that
/// waits on the ring while the frontend sleeps past its poll timeout
/// without a notification is a lost wakeup; no progress at all for
/// `stallSeconds` is a lost response.
public final class EchoFrontend: @unchecked Sendable {
    // @unchecked: one thread runs it (run()); others only read `progress`.

    /// What a run found.
    public struct Outcome: Sendable, Equatable, CustomStringConvertible {
        public var sent = 0
        public var answered = 0
        public var duplicates = 0
        public var wrongValues = 0
        public var unknownIDs = 0
        /// Responses found on the ring after a poll timed out: the backend
        /// published them without the notification the ring asked for.
        public var lostWakeups = 0
        /// Set when the run gave up.
        public var failure: String?

        public var isClean: Bool {
            failure == nil && duplicates == 0 && wrongValues == 0 && unknownIDs == 0
                && lostWakeups == 0
        }

        public var description: String {
            "sent \(sent), answered \(answered), duplicates \(duplicates), wrong \(wrongValues), "
                + "unknown \(unknownIDs), lost wakeups \(lostWakeups)"
                + (failure.map { ", failed: \($0)" } ?? "")
        }
    }

    private var ring: FrontRing<EchoRequest, EchoResponse>
    private let channel: any EventChannel
    private let port: EventChannelPort
    private let total: Int
    private var seen: [UInt64]
    private let answeredCount = Atomic<Int>(0)
    private let cancelled = Atomic<Bool>(false)
    /// Seconds a poll waits before the ring is looked at again.
    public var pollSeconds: Double = 2
    /// Seconds without any response before the run fails.
    public var stallSeconds: Double = 30
    /// Seconds a notification may lag the responses it announces (the
    /// backend pushes, then notifies: on a loaded host it can be descheduled
    /// in between) before it counts as lost.
    public var notificationGraceSeconds: Double = 5

    /// A frontend that initialises the ring in `buffer` (keeping
    /// `keepAlive`, its owner, alive) and notifies through `port`, a port
    /// of `channel` (the frontend's own handle).
    public init(
        initializing buffer: UnsafeMutableRawBufferPointer, keepAlive: AnyObject?,
        channel: any EventChannel, port: EventChannelPort, total: Int
    ) throws(XenBusError) {
        ring = try FrontRing(initializing: buffer, keepAlive: keepAlive)
        self.channel = channel
        self.port = port
        self.total = total
        seen = [UInt64](repeating: 0, count: (total + 63) / 64)
    }

    /// Responses received so far (any thread).
    public var progress: Int { answeredCount.load(ordering: .relaxed) }

    /// Makes ``run()`` return soon with what it has (any thread); the
    /// outcome then says `cancelled` as its failure.
    public func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Runs to the end on the calling thread (not a cooperative one).
    public func run() -> Outcome {
        var outcome = Outcome()
        var lastProgress = monotonicSeconds()
        while outcome.answered < total {
            if cancelled.load(ordering: .relaxed) {
                outcome.failure = "cancelled"
                return outcome
            }
            var moved = false
            do throws(XenBusError) {
                while outcome.sent < total, !ring.isFull {
                    let id = UInt64(outcome.sent)
                    try ring.enqueueRequest(EchoRequest(id: id, value: id &* 31 &+ 7))
                    outcome.sent += 1
                    moved = true
                }
                if ring.pushRequests() { try channel.notify(port) }
                while let response = try ring.nextResponse() {
                    check(response, &outcome)
                    moved = true
                }
                if outcome.answered >= total { break }
                if moved {
                    lastProgress = monotonicSeconds()
                    continue
                }
                if try ring.finalCheckForResponses() { continue }
                if wait(seconds: pollSeconds) == .timedOut, try ring.unconsumedResponses() > 0 {
                    // Responses are there but no notification came: give a
                    // notification racing the timeout its grace.
                    if wait(seconds: notificationGraceSeconds) == .timedOut {
                        outcome.lostWakeups += 1
                    }
                }
            } catch {
                outcome.failure = "\(error)"
                return outcome
            }
            if monotonicSeconds() - lastProgress > stallSeconds {
                outcome.failure =
                    "no response for \(Int(stallSeconds)) s with "
                    + "\(outcome.sent - outcome.answered) outstanding"
                return outcome
            }
        }
        return outcome
    }

    /// ``run()`` on a thread of its own, awaited.
    public func runOnThread(name: String = "echo-front") async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            do {
                try Threads.spawn(name: name) { continuation.resume(returning: self.run()) }
            } catch {
                var outcome = Outcome()
                outcome.failure = "cannot start the frontend thread: \(error)"
                continuation.resume(returning: outcome)
            }
        }
    }

    private func check(_ response: EchoResponse, _ outcome: inout Outcome) {
        guard response.id < UInt64(total) else {
            outcome.unknownIDs += 1
            return
        }
        let id = Int(response.id)
        let bit: UInt64 = 1 << UInt64(id % 64)
        if seen[id / 64] & bit != 0 {
            outcome.duplicates += 1
            return
        }
        seen[id / 64] |= bit
        let value = response.id &* 31 &+ 7
        if response.value != EchoResponse.echo(value, id: response.id) { outcome.wrongValues += 1 }
        outcome.answered += 1
        answeredCount.store(outcome.answered, ordering: .relaxed)
    }

    private enum Wakeup { case notified, timedOut }

    private func wait(seconds: Double) -> Wakeup {
        var descriptor = pollfd(
            fd: channel.fileDescriptor.rawValue, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(seconds * 1000))
        guard ready > 0 else { return .timedOut }
        if let fired = try? channel.pending() { try? channel.unmask(fired) }
        return .notified
    }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
