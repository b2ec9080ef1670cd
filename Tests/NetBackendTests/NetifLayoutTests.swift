import CNetifReference
import NetBackend
import Testing
import XenBus

func encoded<M: RingEncodable>(_ message: M) -> [UInt8] {
    RingEntryWriter.encode(count: M.wireSize) { message.encode(to: &$0) }
}

func decoded<M: RingDecodable>(_ type: M.Type, _ bytes: [UInt8]) -> M {
    RingEntryReader.withCopy(of: bytes) { M(ringEntry: $0) }
}

@Suite("netif messages against io/netif.h")
struct NetifLayoutTests {
    @Test("sizes and ring geometry as the C header")
    func sizes() throws {
        #expect(cnetif_size(0) == NetTxRequest.wireSize)
        #expect(cnetif_size(1) == NetTxResponse.wireSize)
        #expect(cnetif_size(2) == NetRxRequest.wireSize)
        #expect(cnetif_size(3) == NetRxResponse.wireSize)
        #expect(cnetif_size(4) == 8)
        #expect(try RingGeometry.unionSize(NetTxRequest.self, NetTxResponse.self) == cnetif_size(5))
        #expect(try RingGeometry.unionSize(NetRxRequest.self, NetRxResponse.self) == cnetif_size(6))
        let tx = try RingGeometry(
            bufferSize: 4096, request: NetTxRequest.self, response: NetTxResponse.self)
        let rx = try RingGeometry(
            bufferSize: 4096, request: NetRxRequest.self, response: NetRxResponse.self)
        #expect(Int(tx.entryCount) == cnetif_size(7))
        #expect(Int(rx.entryCount) == cnetif_size(8))
    }

    @Test("every field at its C offset, with values that reveal a wrong one")
    func fields() {
        var c = [UInt8](repeating: 0, count: 12)
        cnetif_tx_request(&c, 0x1122_3344, 0x0A0B, 0x000F, 0x5566, 0x7788)
        let request = NetTxRequest(
            gref: GrantRef(0x1122_3344), offset: 0x0A0B, flags: NetTxFlags(rawValue: 0x000F),
            id: 0x5566, size: 0x7788)
        #expect(encoded(request) == c)
        #expect(decoded(NetTxRequest.self, c) == request)

        var response = [UInt8](repeating: 0, count: 8)
        cnetif_rx_response(&response, 0x1234, 0x0567, 0x000D, -2)
        let rx = NetRxResponse(
            id: 0x1234, offset: 0x0567, flags: NetRxFlags(rawValue: 0x000D), status: -2)
        #expect(encoded(rx) == response)

        var extra = [UInt8](repeating: 0, count: 8)
        cnetif_gso_extra(&extra, 0, 1448, 2, 0)
        #expect(encoded(NetRxResponse(extraInfo: .gso(segmentSize: 1448, type: .tcpv6))) == extra)
        // An extra slot on the TX ring reads back the same descriptor.
        var slot = [UInt8](repeating: 0, count: 12)
        cnetif_gso_extra(&slot, 1, 0x0102, 1, 0)
        let fromSlot = decoded(NetTxRequest.self, slot).asExtraInfo
        #expect(fromSlot.kind == .gso && fromSlot.hasMore && fromSlot.gsoSegmentSize == 0x0102)
        #expect(fromSlot.rawGSOType == 1)

        var rxRequest = [UInt8](repeating: 0, count: 8)
        cnetif_rx_request(&rxRequest, 0xBEEF, 0xCAFE_F00D)
        #expect(
            decoded(NetRxRequest.self, rxRequest)
                == NetRxRequest(id: 0xBEEF, gref: GrantRef(0xCAFE_F00D)))

        var txResponse = [UInt8](repeating: 0, count: 4)
        cnetif_tx_response(&txResponse, 0x0A0B, -1)
        #expect(encoded(NetTxResponse(id: 0x0A0B, status: .error)) == txResponse)
    }
}
