import NetBackend
import Testing
import XenBus

/// Headers of a frame: Ethernet, IPv4 (20 bytes), and a transport header.
func ipv4Frame(protocolNumber: UInt8, transport: [UInt8], fragment: UInt16 = 0) -> [UInt8] {
    var frame: [UInt8] = [
        0x00, 0x16, 0x3e, 0x00, 0x00, 0x01,  // destination MAC
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff,  // source MAC
        0x08, 0x00,  // EtherType IPv4
        0x45, 0x00,  // version 4, IHL 5; TOS
    ]
    let total = UInt16(20 + transport.count)
    frame += [UInt8(total >> 8), UInt8(total & 0xFF), 0, 0]  // total length, id
    frame += [UInt8(fragment >> 8), UInt8(fragment & 0xFF), 64, protocolNumber, 0, 0]
    frame += [10, 0, 0, 2, 10, 0, 0, 1]  // source, destination
    return frame + transport
}

/// A 20-byte TCP header (data offset 5) followed by `options` 4-byte words.
func tcpHeader(optionWords: Int = 0) -> [UInt8] {
    var header = [UInt8](repeating: 0, count: 20 + optionWords * 4)
    header[12] = UInt8((5 + optionWords) << 4)
    return header
}

@Suite("virtio_net_hdr and offload translation")
struct VirtioNetHeaderTests {
    @Test("the header's bytes, field by field")
    func wire() throws {
        let header = VirtioNetHeader(
            flags: [.needsChecksum], gsoType: .tcpv6, headerLength: 0x0142, gsoSize: 1440,
            checksumStart: 54, checksumOffset: 16)
        #expect(
            header.bytes == [
                0x01,  // flags: NEEDS_CSUM
                0x04,  // gso_type: TCPV6
                0x42, 0x01,  // hdr_len 0x142
                0xa0, 0x05,  // gso_size 1440
                0x36, 0x00,  // csum_start 54
                0x10, 0x00,  // csum_offset 16
            ])
        let decoded = header.bytes.withUnsafeBytes { VirtioNetHeader(decoding: $0) }
        #expect(decoded == header)
        #expect(
            [UInt8](repeating: 0, count: 9).withUnsafeBytes { VirtioNetHeader(decoding: $0) } == nil
        )
        let ecn = ([0, 0x81, 0, 0, 0, 0, 0, 0, 0, 0] as [UInt8]).withUnsafeBytes {
            VirtioNetHeader(decoding: $0)
        }
        #expect(ecn?.gsoType == nil)
    }

    @Test("TCP and UDP over IPv4 are found; their checksum fields are 16 and 6 bytes in")
    func ipv4() throws {
        let tcp = ipv4Frame(protocolNumber: 6, transport: tcpHeader(optionWords: 3) + [1, 2, 3])
        let found = try tcp.withUnsafeBytes { try ChecksumLocation.find(in: $0).get() }
        #expect(
            found
                == ChecksumLocation(
                    start: 34, offset: 16, transport: .tcp, isIPv6: false, headersLength: 66))
        let udp = ipv4Frame(protocolNumber: 17, transport: [UInt8](repeating: 0, count: 8))
        let udpFound = try udp.withUnsafeBytes { try ChecksumLocation.find(in: $0).get() }
        #expect(udpFound.start == 34 && udpFound.offset == 6 && udpFound.transport == .udp)
    }

    @Test("a VLAN tag moves the network header by four bytes")
    func vlan() throws {
        var frame = ipv4Frame(protocolNumber: 17, transport: [UInt8](repeating: 0, count: 8))
        frame.insert(contentsOf: [0x81, 0x00, 0x00, 0x05], at: 12)
        let found = try frame.withUnsafeBytes { try ChecksumLocation.find(in: $0).get() }
        #expect(found.start == 38)
    }

    @Test("IPv6 with a hop-by-hop header before TCP")
    func ipv6() throws {
        var frame: [UInt8] = [
            0, 0x16, 0x3e, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x86, 0xdd,
        ]
        var ip = [UInt8](repeating: 0, count: 40)
        ip[0] = 0x60
        ip[6] = 0  // next header: hop-by-hop
        frame += ip
        frame += [6, 0, 0, 0, 0, 0, 0, 0]  // hop-by-hop: next TCP, length 0 (8 bytes)
        frame += tcpHeader()
        let found = try frame.withUnsafeBytes { try ChecksumLocation.find(in: $0).get() }
        #expect(
            found
                == ChecksumLocation(
                    start: 62, offset: 16, transport: .tcp, isIPv6: true, headersLength: 82))
    }

    @Test("fragments, other protocols and every truncation are refused, never read past the end")
    func refused() {
        let fragment = ipv4Frame(
            protocolNumber: 17, transport: [UInt8](repeating: 0, count: 8), fragment: 0x2000)
        #expect(fragment.withUnsafeBytes { ChecksumLocation.find(in: $0) } == .failure(.fragmented))
        let icmp = ipv4Frame(protocolNumber: 1, transport: [8, 0, 0, 0])
        #expect(
            icmp.withUnsafeBytes { ChecksumLocation.find(in: $0) }
                == .failure(.unsupported("IP protocol 1")))
        let tcp = ipv4Frame(protocolNumber: 6, transport: tcpHeader(optionWords: 2))
        for cut in 0..<tcp.count {
            let result = Array(tcp.prefix(cut)).withUnsafeBytes { ChecksumLocation.find(in: $0) }
            guard case .failure = result else {
                Issue.record("a frame cut at \(cut) bytes was accepted")
                continue
            }
        }
    }

    @Test("TX: a blank checksum becomes NEEDS_CSUM at the transport header, GSO its type and size")
    func transmit() throws {
        var tcp = ipv4Frame(
            protocolNumber: 6, transport: tcpHeader() + [UInt8](repeating: 7, count: 100))
        let plain = try tcp.withUnsafeMutableBytes {
            try OffloadTranslation.header(
                forTransmitted: $0, checksum: [.dataValidated], segmentation: nil
            ).get()
        }
        #expect(plain == VirtioNetHeader(flags: [.dataValid]))
        let gso = try tcp.withUnsafeMutableBytes {
            try OffloadTranslation.header(
                forTransmitted: $0, checksum: [.checksumBlank, .dataValidated],
                segmentation: TxPacket.Segmentation(type: .tcpv4, segmentSize: 1448)
            ).get()
        }
        #expect(
            gso
                == VirtioNetHeader(
                    flags: [.needsChecksum], gsoType: .tcpv4, headerLength: 54, gsoSize: 1448,
                    checksumStart: 34, checksumOffset: 16))
        #expect(tcp[50] == 0 && tcp[51] == 0, "a blank checksum is left as the guest wrote it")
        // A guest claiming TCPv6 segmentation of an IPv4 packet is dropped.
        let wrong = tcp.withUnsafeMutableBytes {
            OffloadTranslation.header(
                forTransmitted: $0, checksum: [.checksumBlank],
                segmentation: TxPacket.Segmentation(type: .tcpv6, segmentSize: 1448))
        }
        #expect(wrong == .failure(.gsoMismatch(.tcpv6)))
    }

    @Test("TX: GSO without a blank checksum is made partial: the pseudo-header sum is written")
    func transmitFixup() throws {
        var tcp = ipv4Frame(
            protocolNumber: 6, transport: tcpHeader() + [UInt8](repeating: 7, count: 100))
        let header = try tcp.withUnsafeMutableBytes {
            try OffloadTranslation.header(
                forTransmitted: $0, checksum: [],
                segmentation: TxPacket.Segmentation(type: .tcpv4, segmentSize: 1448)
            ).get()
        }
        #expect(header.flags == [.needsChecksum] && header.gsoType == .tcpv4)
        // 10.0.0.2 → 10.0.0.1, protocol 6, TCP length 120: summed by hand.
        let expected: UInt32 = 0x0a00 + 0x0002 + 0x0a00 + 0x0001 + 6 + 120
        #expect(UInt32(tcp[50]) << 8 | UInt32(tcp[51]) == expected)
        // IPv6: addresses ::1 → ::2, next header TCP, length 20.
        var frame: [UInt8] = [
            0, 0x16, 0x3e, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x86, 0xdd,
        ]
        var ip = [UInt8](repeating: 0, count: 40)
        ip[0] = 0x60
        ip[6] = 6
        ip[23] = 1
        ip[39] = 2
        frame += ip + tcpHeader()
        _ = try frame.withUnsafeMutableBytes {
            try OffloadTranslation.header(
                forTransmitted: $0, checksum: [],
                segmentation: TxPacket.Segmentation(type: .tcpv6, segmentSize: 1400)
            ).get()
        }
        #expect(UInt32(frame[70]) << 8 | UInt32(frame[71]) == 1 + 2 + 20 + 6)
    }

    @Test(
        "RX: NEEDS_CSUM is blank and validated, TCP GSO is passed on, UDP and ECN GSO are refused")
    func receive() throws {
        let partial = try OffloadTranslation.receive(
            VirtioNetHeader(flags: [.needsChecksum], checksumStart: 34, checksumOffset: 6)
        ).get()
        #expect(
            partial
                == ReceiveOffload(checksum: [.checksumBlank, .dataValidated], segmentation: nil))
        let valid = try OffloadTranslation.receive(VirtioNetHeader(flags: [.dataValid])).get()
        #expect(valid.checksum == [.dataValidated])
        let none = try OffloadTranslation.receive(VirtioNetHeader()).get()
        #expect(none == ReceiveOffload(checksum: [], segmentation: nil))
        let tso = try OffloadTranslation.receive(
            VirtioNetHeader(flags: [.needsChecksum], gsoType: .tcpv6, gsoSize: 1420)
        ).get()
        #expect(tso.segmentation == TxPacket.Segmentation(type: .tcpv6, segmentSize: 1420))
        #expect(
            OffloadTranslation.receive(
                VirtioNetHeader(flags: [.needsChecksum], gsoType: .udp, gsoSize: 1400))
                == .failure(.unsupportedReceiveGSO(3)))
        var ecn = VirtioNetHeader(flags: [.needsChecksum], gsoSize: 1400)
        ecn.rawGSOType = 0x81
        #expect(OffloadTranslation.receive(ecn) == .failure(.unsupportedReceiveGSO(0x81)))
    }
}
