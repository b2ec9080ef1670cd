import NetBackend
import Testing
import XenBus

func posted(_ count: Int) -> [NetRxRequest] {
    (0..<count).map { NetRxRequest(id: UInt16($0 + 10), gref: GrantRef(UInt32(500 + $0))) }
}

@Suite("RX: received packets planned into posted buffers")
struct RxPlannerTests {
    @Test("a small packet fills one slot")
    func small() throws {
        let plan = try #require(
            RxPlanner.plan(
                length: 60, checksum: [.dataValidated], segmentation: nil, requests: posted(4)[...])
        )
        #expect(plan.requestsUsed == 1)
        #expect(plan.copies == [RxPlan.Copy(packetOffset: 0, gref: GrantRef(500), length: 60)])
        #expect(
            plan.responses == [
                NetRxResponse(id: 10, offset: 0, flags: [.dataValidated], status: 60)
            ])
    }

    @Test("a GSO packet: first slot, the GSO descriptor in the next, then full pages")
    func gso() throws {
        let length = 65_535 + 14
        let segmentation = TxPacket.Segmentation(type: .tcpv4, segmentSize: 1448)
        #expect(
            RxPlanner.plan(
                length: length, checksum: [], segmentation: segmentation, requests: posted(17)[...])
                == nil)
        let plan = try #require(
            RxPlanner.plan(
                length: length, checksum: [.checksumBlank], segmentation: segmentation,
                requests: posted(18)[...]))
        #expect(plan.requestsUsed == 18)
        #expect(plan.copies.reduce(0) { $0 + Int($1.length) } == length)
        #expect(plan.copies.allSatisfy { $0.length <= 4096 })
        // Buffer 501 went to the descriptor: the data skips it.
        #expect(
            plan.copies.map { $0.gref.rawValue } == [UInt32(500)] + Array(UInt32(502)...UInt32(517))
        )
        #expect(plan.responses.count == 18)
        #expect(plan.responses[0].flags == NetRxFlags([.moreData, .checksumBlank, .extraInfo]))
        #expect(plan.responses[1].extraInfo == .gso(segmentSize: 1448, type: .tcpv4))
        #expect(plan.responses.last?.flags == NetRxFlags())
        #expect(
            plan.responses.dropFirst(2).dropLast().allSatisfy { $0.flags == NetRxFlags.moreData })
        #expect(
            plan.responses.compactMap { $0.extraInfo == nil ? Int($0.status) : nil }.reduce(0, +)
                == length)
    }

    @Test("every length from 1 to 3 pages: bytes covered once, in order")
    func lengths() throws {
        for length in stride(from: 1, through: 3 * 4096 + 1, by: 97) {
            let plan = try #require(
                RxPlanner.plan(
                    length: length, checksum: [], segmentation: nil, requests: posted(8)[...]))
            var next = 0
            for copy in plan.copies {
                #expect(copy.packetOffset == next)
                next += Int(copy.length)
            }
            #expect(next == length)
            #expect(plan.requestsUsed == (length + 4095) / 4096)
        }
    }
}
