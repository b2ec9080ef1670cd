/// The data-path worker's round-robin of endpoints with work: each round
/// serves every endpoint that was ready when it began, once, with one
/// budget; one that still has work goes to the back. A ring that never
/// runs dry therefore gets one budget per round and cannot starve the
/// others. Pure and allocation-free once its capacity is reached.
public struct ReadyQueue: Sendable {
    private var queue: [Int] = []
    private var queued: [Bool] = []

    public init() {}

    /// No endpoint is waiting (an entry removed since it was queued may
    /// still count until the next round skips it).
    public var isEmpty: Bool { queue.isEmpty }

    /// Queues endpoint `id` (a small non-negative number) unless it is
    /// queued already.
    public mutating func mark(_ id: Int) {
        precondition(id >= 0)
        if id >= queued.count {
            queued.append(contentsOf: repeatElement(false, count: id + 1 - queued.count))
        }
        guard !queued[id] else { return }
        queued[id] = true
        queue.append(id)
    }

    /// Forgets endpoint `id` (it was detached); a queued entry is skipped.
    public mutating func remove(_ id: Int) {
        if id < queued.count { queued[id] = false }
    }

    /// Takes the endpoints of one round, in order.
    public mutating func takeRound(into round: inout [Int]) {
        round.removeAll(keepingCapacity: true)
        for id in queue where queued[id] {
            queued[id] = false
            round.append(id)
        }
        queue.removeAll(keepingCapacity: true)
    }
}
