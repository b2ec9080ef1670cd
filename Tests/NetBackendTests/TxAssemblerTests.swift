import NetBackend
import Testing
import XenBus

func slot(
    _ id: UInt16, size: UInt16, offset: UInt16 = 0, flags: NetTxFlags = [], gref: UInt32? = nil
) -> NetTxRequest {
    NetTxRequest(
        gref: GrantRef(gref ?? UInt32(100 + id)), offset: offset, flags: flags, id: id, size: size)
}

/// Feeds slots and collects what came out.
func assemble(_ slots: [NetTxRequest]) -> [TxAssembly] {
    var assembler = TxAssembler()
    return slots.compactMap { assembler.add($0) }
}

@Suite("TX: slots gathered into packets")
struct TxAssemblerTests {
    @Test("a single-slot packet with checksum flags")
    func singleSlot() throws {
        let out = assemble([
            slot(1, size: 60, offset: 100, flags: [.checksumBlank, .dataValidated])
        ])
        guard case .packet(let packet) = try #require(out.first) else {
            Issue.record("\(out)")
            return
        }
        #expect(packet.length == 60)
        #expect(packet.pieces == [TxPacket.Piece(gref: GrantRef(101), offset: 100, length: 60)])
        #expect(packet.checksum == [.checksumBlank, .dataValidated])
        #expect(packet.responses(.okay) == [NetTxResponse(id: 1, status: .okay)])
    }

    @Test("a multi-slot GSO packet: first slot, its extra, then data slots")
    func multiSlotGSO() throws {
        let out = assemble([
            slot(1, size: 9000, offset: 2000, flags: [.moreData, .extraInfo, .checksumBlank]),
            NetTxRequest(extraInfo: .gso(segmentSize: 1448, type: .tcpv4)),
            slot(2, size: 4096, flags: [.moreData]),
            slot(3, size: 2808),
        ])
        #expect(out.count == 1)
        guard case .packet(let packet) = try #require(out.first) else {
            Issue.record("\(out)")
            return
        }
        // The first slot holds what the others do not: 9000 - 4096 - 2808.
        #expect(packet.pieces.map(\.length) == [2096, 4096, 2808])
        #expect(packet.pieces.map(\.length).reduce(0) { $0 + Int($1) } == packet.length)
        #expect(packet.segmentation == TxPacket.Segmentation(type: .tcpv4, segmentSize: 1448))
        #expect(
            packet.responses(.okay) == [
                NetTxResponse(id: 1, status: .okay), NetTxResponse(id: 0, status: .null),
                NetTxResponse(id: 2, status: .okay), NetTxResponse(id: 3, status: .okay),
            ])
    }

    @Test("malformed packets are dropped with a response for every slot; the next one is fine")
    func drops() throws {
        let cases: [([NetTxRequest], String)] = [
            ([slot(1, size: 10)], "shorter than an Ethernet header"),
            ([slot(1, size: 5000, offset: 4000)], "crosses its page"),
            ([slot(1, size: 100, flags: [.moreData]), slot(2, size: 200)], "larger than"),
            (
                [slot(1, size: 100, flags: [.moreData]), slot(2, size: 50, offset: 4090)],
                "crosses its page"
            ),
            (
                [
                    slot(1, size: 100, flags: [.extraInfo]),
                    NetTxRequest(extraInfo: NetExtraInfo(bytes: [9])),
                ],
                "unknown extra-info type 9"
            ),
            (
                [
                    slot(1, size: 100, flags: [.extraInfo]),
                    NetTxRequest(extraInfo: .gso(segmentSize: 1000, type: .tcpv4, more: true)),
                    NetTxRequest(extraInfo: .gso(segmentSize: 1000, type: .tcpv4)),
                ], "given twice"
            ),
            (
                [
                    slot(1, size: 100, flags: [.extraInfo]),
                    NetTxRequest(extraInfo: .gso(segmentSize: 0, type: .tcpv4)),
                ],
                "segment size 0"
            ),
            (
                [
                    slot(1, size: 100, flags: [.extraInfo]),
                    NetTxRequest(extraInfo: .gso(segmentSize: 10, type: .none)),
                ],
                "unknown GSO type 0"
            ),
            (
                [slot(1, size: 60000, flags: [.moreData])]
                    + (2...19).map { slot($0, size: 10, flags: $0 < 19 ? [.moreData] : []) },
                "more than 18 slots"
            ),
        ]
        for (slots, reason) in cases {
            var assembler = TxAssembler()
            let out =
                slots.compactMap { assembler.add($0) }
                + [assembler.add(slot(50, size: 60))].compactMap { $0 }
            #expect(out.count == 2, "\(reason): \(out)")
            guard case .dropped(let drop) = out.first else {
                Issue.record("\(reason): not dropped: \(out)")
                continue
            }
            #expect(drop.reason.contains(reason), "\(drop.reason)")
            #expect(drop.responses.count == slots.count, "\(reason): a response per slot")
            #expect(
                drop.responses.allSatisfy {
                    $0.status == NetifStatus.error.rawValue
                        || $0.status == NetifStatus.null.rawValue
                })
            guard case .packet = out.last else {
                Issue.record("\(reason): the next packet was not taken: \(out)")
                continue
            }
        }
    }

    @Test("more_data that never ends is fatal after a bound")
    func endless() {
        var assembler = TxAssembler()
        var fatal: String?
        for id in 0..<200 {
            if case .fatal(let reason)? = assembler.add(
                slot(UInt16(id), size: 1, flags: [.moreData]))
            {
                fatal = reason
                break
            }
        }
        #expect(fatal != nil)
        #expect(!assembler.isGathering)
    }

    @Test("a generated stream of hostile slots never traps, answers each slot once, stays in pages")
    func hostileStream() {
        var random = SystemRandomNumberGenerator()
        var assembler = TxAssembler()
        var slotsIn = 0
        var responsesOut = 0
        for _ in 0..<200_000 {
            let flags = NetTxFlags(rawValue: UInt16.random(in: 0...15, using: &random))
            let request = NetTxRequest(
                gref: GrantRef(UInt32.random(in: 0...UInt32.max, using: &random)),
                offset: UInt16.random(in: 0...UInt16.max, using: &random) % 5000,
                flags: flags, id: UInt16.random(in: 0...UInt16.max, using: &random),
                size: [0, 1, 13, 14, 60, 1500, 4096, 9000, 65535].randomElement(using: &random)!)
            slotsIn += 1
            switch assembler.add(request) {
            case .packet(let packet):
                responsesOut += packet.responses(.okay).count
                #expect(packet.pieces.allSatisfy { Int($0.offset) + Int($0.length) <= xenPageSize })
                #expect(packet.pieces.reduce(0) { $0 + Int($1.length) } == packet.length)
                #expect(packet.length >= TxAssembler.minimumLength)
                #expect(packet.pieces.count <= TxAssembler.maxDataSlots)
            case .dropped(let drop):
                responsesOut += drop.responses.count
            case .fatal:
                // The vif would disconnect; a fresh assembler for the test.
                assembler = TxAssembler()
                responsesOut = slotsIn
            case nil:
                break
            }
        }
        // End whatever packet is half gathered with plain slots.
        var closing = 0
        while assembler.isGathering && closing < TxAssembler.fatalSlots + 1 {
            slotsIn += 1
            closing += 1
            switch assembler.add(slot(0, size: 60)) {
            case .packet(let packet): responsesOut += packet.responses(.okay).count
            case .dropped(let drop): responsesOut += drop.responses.count
            case .fatal: responsesOut = slotsIn
            case nil: break
            }
        }
        #expect(!assembler.isGathering)
        #expect(responsesOut == slotsIn, "every slot taken got exactly one response")
    }
}
