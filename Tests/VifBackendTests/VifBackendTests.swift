import NetBackend
import Synchronization
import SystemPackage
import TapDevice
import Testing
import VifBackend
import XenBus
import XenBusTesting

/// An Ethernet + IPv4 + TCP frame of `length` bytes in all, payload bytes
/// counting up from `seed`.
func tcpFrame(length: Int, seed: UInt8 = 0) -> [UInt8] {
    var frame: [UInt8] = [
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x16, 0x3e, 0, 0, 5, 0x08, 0x00,
    ]
    let total = UInt16(length - 14)
    frame += [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 6, 0, 0]
    frame += [10, 0, 0, 5, 10, 0, 0, 1]
    var tcp = [UInt8](repeating: 0, count: 20)
    tcp[12] = 5 << 4
    frame += tcp
    var value = seed
    while frame.count < length {
        frame.append(value)
        value &+= 1
    }
    return frame
}

/// The extra-info descriptor an RX response slot holds, read back from the
/// response's fields (the slot is 8 bytes either way).
func extraInfo(_ response: NetRxResponse) -> NetExtraInfo {
    NetExtraInfo(bytes: [
        UInt8(response.id & 0xFF), UInt8(response.id >> 8),
        UInt8(response.offset & 0xFF), UInt8(response.offset >> 8),
        UInt8(response.flags.rawValue & 0xFF), UInt8(response.flags.rawValue >> 8),
        UInt8(UInt16(bitPattern: response.status) & 0xFF),
        UInt8(UInt16(bitPattern: response.status) >> 8),
    ])
}

/// One netback (a BackendBus over the vif driver) with fake Xen devices
/// and socket-pair TAPs.
final class Rig {
    let store: InMemoryXenBusStore
    let grants: FakeGrantTable
    let events: FakeEventChannelHub
    let network = SocketPairNetwork()
    let driver: VifDriver
    let bus: BackendBus<VifDriver>
    var task: Task<Void, any Error>?

    init(
        store: InMemoryXenBusStore = InMemoryXenBusStore(),
        grants: FakeGrantTable = FakeGrantTable(),
        events: FakeEventChannelHub = FakeEventChannelHub(), maxQueues: Int = 2
    ) {
        self.store = store
        self.grants = grants
        self.events = events
        driver = VifDriver(
            grants: grants,
            openEventChannel: { () throws(XenBusError) in try events.open(domain: DomainID(0)) },
            network: network, maxQueues: maxQueues)
        bus = BackendBus(store: store, driver: driver)
    }

    func start() {
        let bus = self.bus
        task = Task { try await bus.run() }
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
    }

    /// A vif as xend writes it, and its guest's netfront once the backend
    /// offered InitWait.
    func guest(
        domain: UInt16, device: UInt32 = 0, split: Bool = true, features: [String: String] = [:],
        backendNodes: [String: String] = ["mac": "00:16:3e:00:00:05", "bridge": "xenbr0"]
    ) async throws -> FakeNetfront {
        let layout = FakeDeviceLayout(
            deviceType: "vif", frontendDomain: DomainID(domain), deviceID: device)
        layout.create(in: store, backendNodes: backendNodes)
        let guest = try FakeNetfront(
            layout: layout, store: store, grants: grants, events: events, split: split,
            features: features)
        // Connected before InitWait would be a jump (a guest fault): wait.
        try #require(await eventually { guest.backendState == "2" }, "backend offers InitWait")
        return guest
    }

    func connected(_ guest: FakeNetfront) async -> Bool {
        guest.connect()
        return await eventually { guest.backendState == "4" }
    }

    func counters(_ name: String) -> VifCounters.Snapshot? {
        driver.registry.snapshot.first { $0.name == name }?.counters
    }
}

@Suite("netback: a vif's TX and RX on the runtime, with fake Xen devices")
struct VifBackendTests {
    @Test("a vif's port is released once, however often it is detached or closed")
    func releaseOnce() {
        let calls = Mutex<[Bool]>([])
        let attachment = VifAttachment(name: "vif1.0", queues: []) { offline in
            calls.withLock { $0.append(offline) }
        }
        attachment.detach()
        attachment.close()
        attachment.detach()
        #expect(calls.withLock { $0 } == [true])
    }

    @Test("features before InitWait, the vif named and planned from the backend nodes")
    func handshake() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(
            domain: 5, backendNodes: ["mac": "00:16:3e:00:00:05", "mtu": "9000"])
        let backend = guest.layout.backendPath
        for (node, value) in [
            ("feature-sg", "1"), ("feature-gso-tcpv4", "1"), ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"), ("feature-rx-copy", "1"),
            ("feature-split-event-channels", "1"), ("multi-queue-max-queues", "2"),
        ] {
            #expect(rig.store.value("\(backend)/\(node)") == value, "\(node)")
        }
        #expect(await rig.connected(guest))
        let plan = try #require(rig.network.planList.first)
        #expect(plan.name == "vif5.0")
        #expect(plan.mtu == 9000)
        #expect(plan.queueCount == 1)
        #expect(plan.offloads == [.checksum, .tcpv4, .tcpv6])
        #expect(plan.entries.mac == "00:16:3e:00:00:05")
        await rig.stop()
        #expect(
            rig.network.closedNames == ["vif5.0"],
            "a stopping backend leaves the vif to its successor")
    }

    @Test("TX: single- and multi-slot packets reach the TAP whole, in order, answered okay")
    func transmit() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 5)
        #expect(await rig.connected(guest))
        let small = tcpFrame(length: 60, seed: 1)
        let large = tcpFrame(length: 9000, seed: 2)
        let smallIDs = try guest.transmit(small)
        let largeIDs = try guest.transmit(large, pieceSize: 2000)
        #expect(largeIDs.count == 5)
        var packets: [(VirtioNetHeader, [UInt8])] = []
        #expect(
            await eventually {
                packets += rig.network.received("vif5.0")
                return packets.count >= 2
            })
        #expect(packets.map(\.1) == [small, large])
        #expect(packets.allSatisfy { $0.0 == VirtioNetHeader() })
        var responses: [NetTxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.transmitResponses()) ?? []
                return responses.count == 6
            })
        #expect(responses.map(\.id) == smallIDs + largeIDs)
        #expect(responses.allSatisfy { $0.status == NetifStatus.okay.rawValue })
        let counters = try #require(rig.counters("vif5.0"))
        #expect(counters.txPackets == 2 && counters.txBytes == 9060)
        // One grant copy call per batch, not one per slot.
        #expect(rig.grants.deviceCopyCalls <= 2)
        await rig.stop()
    }

    @Test(
        "TX: a blank checksum and GSO extra become the virtio header; the extra gets a null response"
    )
    func transmitOffloads() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 6, split: false)
        #expect(await rig.connected(guest))
        let frame = tcpFrame(length: 20_000, seed: 3)
        let ids = try guest.transmit(
            frame, pieceSize: 4096, flags: [.checksumBlank, .dataValidated],
            gso: .gso(segmentSize: 1448, type: .tcpv4))
        var packets: [(VirtioNetHeader, [UInt8])] = []
        #expect(
            await eventually {
                packets += rig.network.received("vif6.0")
                return !packets.isEmpty
            })
        #expect(packets.first?.1 == frame)
        #expect(
            packets.first?.0
                == VirtioNetHeader(
                    flags: [.needsChecksum], gsoType: .tcpv4, headerLength: 54, gsoSize: 1448,
                    checksumStart: 34, checksumOffset: 16))
        var responses: [NetTxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.transmitResponses()) ?? []
                return responses.count == ids.count + 1
            })
        try #require(responses.count == ids.count + 1)
        #expect(responses[1].status == NetifStatus.null.rawValue)
        #expect(responses.filter { $0.status == NetifStatus.okay.rawValue }.map(\.id) == ids)
        #expect(rig.counters("vif6.0")?.txGSOPackets == 1)
        await rig.stop()
    }

    @Test("RX: small and GSO packets land in posted buffers with their flags and descriptor")
    func receive() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 7)
        #expect(await rig.connected(guest))
        try guest.postBuffers(32)
        let small = tcpFrame(length: 100, seed: 4)
        let large = tcpFrame(length: 9000, seed: 5)
        #expect(
            rig.network.send("vif7.0", header: VirtioNetHeader(flags: [.dataValid]), frame: small))
        #expect(
            rig.network.send(
                "vif7.0",
                header: VirtioNetHeader(
                    flags: [.needsChecksum], gsoType: .tcpv4, headerLength: 54, gsoSize: 1448,
                    checksumStart: 34, checksumOffset: 16), frame: large))
        var responses: [NetRxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.receiveResponses()) ?? []
                return responses.count >= 5
            })
        try #require(responses.count == 5)
        #expect(responses[0].flags == [.dataValidated] && responses[0].status == 100)
        #expect(guest.bytes(of: responses[0]) == small)
        #expect(responses[1].flags == [.checksumBlank, .dataValidated, .extraInfo, .moreData])
        #expect(extraInfo(responses[2]) == .gso(segmentSize: 1448, type: .tcpv4))
        #expect(responses[3].flags == [.moreData])
        #expect(responses[4].flags == [])
        let reassembled =
            guest.bytes(of: responses[1]) + guest.bytes(of: responses[3])
            + guest.bytes(of: responses[4])
        #expect(reassembled == large)
        let counters = try #require(rig.counters("vif7.0"))
        #expect(counters.rxPackets == 2 && counters.rxBytes == 9100 && counters.rxGSOPackets == 1)
        await rig.stop()
    }

    @Test("RX: without buffers, and beyond what the guest takes, packets are dropped and counted")
    func receiveDrops() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(
            domain: 8,
            features: ["feature-sg": "0", "feature-gso-tcpv4": "0", "feature-gso-tcpv6": "0"])
        #expect(await rig.connected(guest))
        #expect(
            rig.network.planList.first?.offloads == [.checksum], "no TSO for a guest without sg")
        #expect(rig.network.send("vif8.0", header: VirtioNetHeader(), frame: tcpFrame(length: 80)))
        #expect(await eventually { rig.counters("vif8.0")?.rxNoBuffers == 1 })
        try guest.postBuffers(4)
        #expect(
            rig.network.send("vif8.0", header: VirtioNetHeader(), frame: tcpFrame(length: 5000)))
        #expect(
            rig.network.send(
                "vif8.0",
                header: VirtioNetHeader(flags: [.needsChecksum], gsoType: .udp, gsoSize: 1400),
                frame: tcpFrame(length: 1000)))
        #expect(
            rig.network.send(
                "vif8.0", header: VirtioNetHeader(), frame: tcpFrame(length: 1500, seed: 9)))
        var responses: [NetRxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.receiveResponses()) ?? []
                return responses.count >= 1 && rig.counters("vif8.0")?.rxUnsupported == 2
            })
        try #require(responses.count == 1)
        #expect(guest.bytes(of: responses[0]) == tcpFrame(length: 1500, seed: 9))
        await rig.stop()
    }

    @Test("a hostile TX stream: every slot answered, malformed packets counted, the vif stays up")
    func hostileStream() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 9)
        #expect(await rig.connected(guest))
        let page = rig.grants.grant(from: DomainID(9), pages: 1, writable: false)
        var random = SystemRandomNumberGenerator()
        var slots = 0
        for _ in 0..<40 {
            // Random flags, sizes and offsets, bad refs; never more_data
            // forever (that is the fatal case, below).
            let flags = NetTxFlags(rawValue: UInt16.random(in: 0...15, using: &random)).subtracting(
                .moreData)
            let ref =
                Bool.random(using: &random)
                ? page.refs[0] : GrantRef(UInt32.random(in: 9000...9999, using: &random))
            try guest.rawTransmit(
                NetTxRequest(
                    gref: ref, offset: UInt16.random(in: 0...5000, using: &random), flags: flags,
                    id: UInt16(slots), size: UInt16.random(in: 0...3000, using: &random)))
            slots += 1
            if flags.contains(.extraInfo) {
                let raw = (0..<8).map { _ in UInt8.random(in: 0...255, using: &random) }
                var extra = NetExtraInfo(bytes: raw)
                extra.bytes[1] = 0  // the last extra
                try guest.rawTransmit(NetTxRequest(extraInfo: extra))
                slots += 1
            }
            guest.pushTransmit()
        }
        var responses: [NetTxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.transmitResponses()) ?? []
                return responses.count == slots
            })
        #expect(guest.backendState == "4")
        let counters = try #require(rig.counters("vif9.0"))
        #expect(
            counters.txMalformed + counters.txGrantErrors + counters.txPackets
                + counters.txTapDropped == 40)
        #expect(counters.txMalformed + counters.txGrantErrors > 0)
        // A good packet still goes through afterwards.
        let frame = tcpFrame(length: 200, seed: 7)
        try guest.transmit(frame)
        #expect(await eventually { rig.network.received("vif9.0").contains { $0.1 == frame } })
        await rig.stop()
    }

    @Test("an impossible ring state closes that vif only; its TAP is taken offline")
    func impossibleRing() async throws {
        let rig = Rig()
        rig.start()
        let victim = try await rig.guest(domain: 10)
        let bystander = try await rig.guest(domain: 11)
        #expect(await rig.connected(victim))
        #expect(await rig.connected(bystander))
        // req_prod (offset 0 of the shared ring) a thousand ahead.
        victim.txPage.bytes.storeBytes(of: UInt32(1000), toByteOffset: 0, as: UInt32.self)
        try victim.channel.notify(victim.txPort)
        #expect(await eventually { victim.backendState == "5" })
        #expect(rig.store.value(victim.layout.errorNode) != nil)
        #expect(await eventually { rig.network.detachedNames == ["vif10.0"] })
        let frame = tcpFrame(length: 64, seed: 8)
        try bystander.transmit(frame)
        #expect(await eventually { rig.network.received("vif11.0").contains { $0.1 == frame } })
        #expect(bystander.backendState == "4")
        await rig.stop()
    }

    @Test("RX into buffers the guest revoked: error responses, counted, the vif stays up")
    func receiveBadBuffers() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 17)
        #expect(await rig.connected(guest))
        try guest.postBuffers(1)
        for page in guest.rxBuffers.values { rig.grants.revoke(page.refs[0]) }
        #expect(rig.network.send("vif17.0", header: VirtioNetHeader(), frame: tcpFrame(length: 90)))
        var responses: [NetRxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.receiveResponses()) ?? []
                return responses.count == 1
            })
        #expect(responses.first?.status == NetifStatus.error.rawValue)
        #expect(rig.counters("vif17.0")?.rxGrantErrors == 1)
        try guest.postBuffers(1)
        let frame = tcpFrame(length: 91, seed: 3)
        #expect(rig.network.send("vif17.0", header: VirtioNetHeader(), frame: frame))
        #expect(
            await eventually {
                responses += (try? guest.receiveResponses()) ?? []
                return responses.count == 2
            })
        try #require(responses.count == 2)
        #expect(guest.bytes(of: responses[1]) == frame)
        #expect(guest.backendState == "4")
        await rig.stop()
    }

    @Test("a packet whose more_data never ends closes that vif")
    func endlessPacket() async throws {
        let rig = Rig()
        rig.start()
        let guest = try await rig.guest(domain: 15)
        #expect(await rig.connected(guest))
        let page = rig.grants.grant(from: DomainID(15), pages: 1, writable: false)
        for id in 0..<(TxAssembler.fatalSlots + 1) {
            try guest.rawTransmit(
                NetTxRequest(
                    gref: page.refs[0], offset: 0, flags: [.moreData], id: UInt16(id), size: 100))
        }
        guest.pushTransmit()
        #expect(await eventually { guest.backendState == "5" })
        #expect(rig.store.value(guest.layout.errorNode)?.contains("without an end") == true)
        await rig.stop()
    }

    @Test("two queues: each has its rings, its worker and its TAP queue")
    func twoQueues() async throws {
        let rig = Rig()
        rig.start()
        let layout = FakeDeviceLayout(deviceType: "vif", frontendDomain: DomainID(16), deviceID: 0)
        layout.create(in: rig.store, backendNodes: ["mac": "00:16:3e:00:00:10"])
        let first = try FakeNetfront(
            layout: layout, store: rig.store, grants: rig.grants, events: rig.events,
            queuePrefix: "queue-0/")
        let second = try FakeNetfront(
            layout: layout, store: rig.store, grants: rig.grants, events: rig.events,
            queuePrefix: "queue-1/")
        first.store.set("\(layout.frontendPath)/multi-queue-num-queues", "2")
        try #require(await eventually { first.backendState == "2" })
        #expect(await rig.connected(first))
        #expect(rig.network.planList.first?.queueCount == 2)
        let one = tcpFrame(length: 120, seed: 1)
        let two = tcpFrame(length: 130, seed: 2)
        try first.transmit(one)
        try second.transmit(two)
        #expect(
            await eventually { rig.network.received("vif16.0", queue: 0).contains { $0.1 == one } })
        #expect(
            await eventually { rig.network.received("vif16.0", queue: 1).contains { $0.1 == two } })
        try second.postBuffers(2)
        #expect(rig.network.send("vif16.0", header: VirtioNetHeader(), frame: one, queue: 1))
        var responses: [NetRxResponse] = []
        #expect(
            await eventually {
                responses += (try? second.receiveResponses()) ?? []
                return responses.count == 1
            })
        try #require(responses.count == 1)
        #expect(second.bytes(of: responses[0]) == one)
        await rig.stop()
    }

    @Test("a frontend without request-rx-copy or with too many queues is refused with a reason")
    func refusals() async throws {
        let rig = Rig()
        rig.start()
        let flipper = try await rig.guest(domain: 12, features: ["request-rx-copy": "0"])
        flipper.connect()
        #expect(await eventually { flipper.backendState == "5" })
        #expect(rig.store.value(flipper.layout.errorNode)?.contains("request-rx-copy") == true)
        let greedy = try await rig.guest(domain: 13, features: ["multi-queue-num-queues": "8"])
        greedy.connect()
        #expect(await eventually { greedy.backendState == "5" })
        #expect(rig.network.planList.isEmpty, "nothing created in dom0 for a refused vif")
        await rig.stop()
    }

    @Test("a successor backend resumes a Connected vif: unanswered slots are taken again")
    func restartAdoption() async throws {
        let first = Rig()
        first.start()
        let guest = try await first.guest(domain: 14)
        #expect(await first.connected(guest))
        await first.stop()
        // While no backend runs, the guest sends and posts buffers.
        let frame = tcpFrame(length: 300, seed: 11)
        try guest.transmit(frame)
        try guest.postBuffers(4)
        // The successor: same store and devices, a new driver and bus.
        let second = Rig.successor(of: first)
        second.start()
        #expect(await eventually { second.network.planList.count == 1 })
        #expect(await eventually { second.network.received("vif14.0").contains { $0.1 == frame } })
        #expect(
            second.network.send("vif14.0", header: VirtioNetHeader(), frame: tcpFrame(length: 70)))
        var responses: [NetRxResponse] = []
        #expect(
            await eventually {
                responses += (try? guest.receiveResponses()) ?? []
                return responses.count == 1
            })
        #expect(guest.backendState == "4")
        await second.stop()
    }
}

extension Rig {
    /// A new netback process over the same xenstore and Xen (its own
    /// driver, bus and TAPs).
    static func successor(of rig: Rig) -> Rig {
        Rig(store: rig.store, grants: rig.grants, events: rig.events)
    }
}
