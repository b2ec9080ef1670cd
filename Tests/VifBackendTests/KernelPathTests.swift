import NetBackend
import NetnsTesting
import SystemPackage
import TapDevice
import Testing
import VifBackend
import XenBus
import XenBusTesting

/// A vif's port as a real TAP inside a test's own network namespace, with
/// dom0's address 10.9.0.1/24 on it and the guest (10.9.0.2) a known
/// neighbour; no vif-script (that is NetConf's, tested there).
struct NamespaceTapNetwork: VifNetwork {
    let namespace: NetworkNamespace

    func attach(_ plan: VifPlan) throws -> VifAttachment {
        let tap = try namespace.inside {
            try TapDevice.create(
                name: plan.name, queueCount: plan.queueCount, offloads: plan.offloads)
        }
        do {
            try namespace.ip("link", "set", tap.name, "address", "fe:ff:ff:ff:ff:ff")
            try namespace.ip("addr", "add", "10.9.0.1/24", "dev", tap.name)
            try namespace.ip("link", "set", tap.name, "up")
            try namespace.ip(
                "neigh", "add", "10.9.0.2", "lladdr", "00:16:3e:00:00:05", "dev", tap.name)
        } catch {
            tap.close()
            throw error
        }
        return VifAttachment(name: tap.name, queues: tap.queues) { _ in tap.close() }
    }
}

/// The Internet checksum (RFC 1071).
func checksum(_ bytes: ArraySlice<UInt8>) -> UInt16 {
    var sum: UInt32 = 0
    var index = bytes.startIndex
    while index + 1 < bytes.endIndex {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.endIndex { sum += UInt32(bytes[index]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// An IPv4 frame from the guest (00:16:3e:00:00:05, 10.9.0.2) to dom0
/// (fe:ff:ff:ff:ff:ff, 10.9.0.1) with a valid header checksum.
func guestFrame(protocolNumber: UInt8, payload: [UInt8]) -> [UInt8] {
    var frame: [UInt8] = [
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x16, 0x3e, 0, 0, 5, 0x08, 0x00,
    ]
    let total = UInt16(20 + payload.count)
    var ip: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, protocolNumber, 0,
        0,
    ]
    ip += [10, 9, 0, 2, 10, 9, 0, 1]
    let sum = checksum(ip[...])
    ip[10] = UInt8(sum >> 8)
    ip[11] = UInt8(sum & 0xFF)
    frame += ip + payload
    return frame
}

@Suite("netback with a real TAP: the guest talks to dom0's kernel (host integration)")
struct KernelPathTests {
    /// The data responses' bytes of the RX packets received so far, one
    /// array per packet.
    static func packets(_ guest: FakeNetfront, _ responses: [NetRxResponse]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var current: [UInt8] = []
        var skipExtra = false
        for response in responses {
            if skipExtra {
                skipExtra = false
                continue
            }
            current += guest.bytes(of: response)
            if response.flags.contains(.extraInfo) { skipExtra = true }
            if !response.flags.contains(.moreData) {
                out.append(current)
                current = []
            }
        }
        return out
    }

    @Test(
        "ping: the kernel answers the guest's echo request; a GSO TCP segment is taken whole and reset",
        .enabled(if: runningAsRoot, "creates network namespaces"))
    func pingAndGSO() async throws {
        let namespace = try NetworkNamespace()
        defer { namespace.destroy() }
        let store = InMemoryXenBusStore()
        let grants = FakeGrantTable()
        let events = FakeEventChannelHub()
        let driver = VifDriver(
            grants: grants,
            openEventChannel: { () throws(XenBusError) in try events.open(domain: DomainID(0)) },
            network: NamespaceTapNetwork(namespace: namespace))
        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        defer { running.cancel() }
        let layout = FakeDeviceLayout(deviceType: "vif", frontendDomain: DomainID(5), deviceID: 0)
        layout.create(in: store, backendNodes: ["mac": "00:16:3e:00:00:05"])
        let guest = try FakeNetfront(layout: layout, store: store, grants: grants, events: events)
        try #require(await eventually { guest.backendState == "2" })
        guest.connect()
        #expect(await eventually { guest.backendState == "4" })
        try guest.postBuffers(64)

        // ICMP echo request, identifier 0x4242.
        var icmp: [UInt8] = [8, 0, 0, 0, 0x42, 0x42, 0, 1] + [UInt8](repeating: 0xAB, count: 56)
        let sum = checksum(icmp[...])
        icmp[2] = UInt8(sum >> 8)
        icmp[3] = UInt8(sum & 0xFF)
        try guest.transmit(guestFrame(protocolNumber: 1, payload: icmp))
        var responses: [NetRxResponse] = []
        func received() async -> [[UInt8]] {
            responses += (try? guest.receiveResponses()) ?? []
            return Self.packets(guest, responses)
        }
        #expect(
            await eventually {
                await received().contains {
                    $0.count >= 42 && $0[23] == 1 && $0[34] == 0 && $0[38] == 0x42
                }
            }, "an ICMP echo reply reaches the guest")

        // A 20000-byte TCP segment (ACK, to a closed port) with GSO and a
        // blank checksum: the TAP takes it whole (no software segmentation
        // here) and the kernel answers with a reset.
        var tcp = [UInt8](repeating: 0, count: 20)
        tcp[0] = 0x9C
        tcp[1] = 0x40  // source port 40000
        tcp[2] = 0x15
        tcp[3] = 0xB3  // destination port 5555
        tcp[7] = 1  // sequence 1
        tcp[11] = 1  // acknowledgement 1
        tcp[12] = 5 << 4
        tcp[13] = 0x10  // ACK
        tcp[14] = 0xFF
        tcp[15] = 0xFF  // window
        let segment = guestFrame(
            protocolNumber: 6, payload: tcp + [UInt8](repeating: 0x5A, count: 20_000 - 54))
        try guest.transmit(
            segment, flags: [.checksumBlank, .dataValidated],
            gso: .gso(segmentSize: 1448, type: .tcpv4))
        #expect(
            await eventually {
                await received().contains { $0.count >= 54 && $0[23] == 6 && $0[47] & 0x04 != 0 }
            }, "a TCP reset reaches the guest")
        let counters = try #require(driver.registry.snapshot.first?.counters)
        #expect(counters.txPackets == 2 && counters.txTapDropped == 0 && counters.txMalformed == 0)
        #expect(counters.rxPackets >= 2)
        running.cancel()
        _ = try? await running.value
    }
}
