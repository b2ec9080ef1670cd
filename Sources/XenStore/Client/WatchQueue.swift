import Synchronization

/// The events of one watch, between the reader thread (producer) and the
/// tasks iterating the watch (consumers). Unbounded: xenstored bounds what
/// it queues per connection, and dropping an event could hide a change.
final class WatchQueue: Sendable {
    private enum End {
        case finished
        case failed(XenStoreError)
        /// The failure was thrown once; later calls see the end.
        case reported
    }

    private struct State {
        var events: [XenStoreWatchEvent] = []
        var head = 0
        var waiters:
            [(id: UInt64, continuation: CheckedContinuation<XenStoreWatchEvent?, any Error>)] =
                []
        var nextWaiter: UInt64 = 0
        var end: End?
    }

    private let state = Mutex(State())

    /// Delivers an event to the oldest waiter, or buffers it.
    func push(_ event: XenStoreWatchEvent) {
        let waiter = state.withLock {
            state -> CheckedContinuation<XenStoreWatchEvent?, any Error>? in
            guard state.end == nil else { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst().continuation }
            state.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// Ends the sequence normally once buffered events are consumed.
    func finish() { terminate(.finished) }

    /// Ends the sequence with an error once buffered events are consumed.
    func fail(_ error: XenStoreError) { terminate(.failed(error)) }

    private func terminate(_ end: End) {
        let waiters = state.withLock {
            state -> [CheckedContinuation<XenStoreWatchEvent?, any Error>] in
            guard state.end == nil else { return [] }
            state.end = end
            // Waiters exist only when the buffer is empty.
            let waiting = state.waiters.map(\.continuation)
            state.waiters.removeAll()
            if case .failed = end, !waiting.isEmpty { state.end = .reported }
            return waiting
        }
        for waiter in waiters {
            if case .failed(let error) = end {
                waiter.resume(throwing: error)
            } else {
                waiter.resume(returning: nil)
            }
        }
    }

    /// The next event; nil when the watch ended or the calling task is
    /// cancelled.
    func next() async throws -> XenStoreWatchEvent? {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation {
                (continuation: CheckedContinuation<XenStoreWatchEvent?, any Error>) in
                enum Outcome {
                    case value(XenStoreWatchEvent?)
                    case error(XenStoreError)
                    case wait
                }
                let outcome = state.withLock { state -> Outcome in
                    if state.head < state.events.count {
                        let event = state.events[state.head]
                        state.head += 1
                        if state.head == state.events.count {
                            state.events.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                        return .value(event)
                    }
                    switch state.end {
                    case .finished, .reported:
                        return .value(nil)
                    case .failed(let error):
                        state.end = .reported
                        return .error(error)
                    case nil:
                        // Checked under the lock: a cancel handler that ran
                        // before this point found no waiter to resume.
                        if Task.isCancelled { return .value(nil) }
                        state.waiters.append((id, continuation))
                        return .wait
                    }
                }
                switch outcome {
                case .value(let event): continuation.resume(returning: event)
                case .error(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock {
                state -> CheckedContinuation<XenStoreWatchEvent?, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                    return nil
                }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(returning: nil)
        }
    }
}
