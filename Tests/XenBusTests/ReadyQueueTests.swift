import Testing
import XenBus

@Suite struct ReadyQueueTests {
    @Test func aRoundServesEachReadyEndpointOnceInOrder() {
        var queue = ReadyQueue()
        #expect(queue.isEmpty)
        for id in [3, 0, 3, 7, 0] { queue.mark(id) }
        var round: [Int] = []
        queue.takeRound(into: &round)
        #expect(round == [3, 0, 7])
        #expect(queue.isEmpty)
        queue.takeRound(into: &round)
        #expect(round.isEmpty)
    }

    @Test func anEndpointMarkedDuringARoundGoesToTheNext() {
        var queue = ReadyQueue()
        queue.mark(1)
        queue.mark(2)
        var round: [Int] = []
        queue.takeRound(into: &round)
        // While serving the round, 1 still has work and 4 became ready.
        queue.mark(4)
        queue.mark(1)
        queue.takeRound(into: &round)
        #expect(round == [4, 1])
    }

    @Test func aRemovedEndpointIsSkipped() {
        var queue = ReadyQueue()
        queue.mark(5)
        queue.mark(6)
        queue.remove(5)
        queue.remove(9)  // never seen: no effect
        var round: [Int] = []
        queue.takeRound(into: &round)
        #expect(round == [6])
        // Marked again after removal, it is served again.
        queue.mark(5)
        queue.takeRound(into: &round)
        #expect(round == [5])
    }
}
