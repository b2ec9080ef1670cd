import NetBackend
import Synchronization
import SystemPackage
import TapDevice
import Testing
import VifBackend
import XenBus
import XenBusTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Polls `condition` until it holds or `seconds` pass (generous: the test
/// process runs suites in parallel on a loaded machine; a pass costs only
/// the time until the condition holds).
func eventually(_ seconds: Double = 90, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return await condition()
}

/// dom0's network for tests: each vif queue is one end of a SOCK_SEQPACKET
/// socket pair (which keeps packet boundaries and cuts long reads short,
/// as a TAP does); the test holds the other end as "dom0's stack".
final class SocketPairNetwork: VifNetwork {
    private struct State {
        var hostEnds: [String: [FileDescriptor]] = [:]
        var plans: [VifPlan] = []
        var detached: [String] = []
        var closed: [String] = []
    }

    private let state = Mutex(State())

    func attach(_ plan: VifPlan) throws -> VifAttachment {
        var backend: [FileDescriptor] = []
        var host: [FileDescriptor] = []
        for _ in 0..<plan.queueCount {
            var pair: [Int32] = [0, 0]
            let kind = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            guard socketpair(AF_UNIX, kind, 0, &pair) == 0 else {
                throw VifNetworkError("socketpair: errno \(errno)")
            }
            for fd in pair {
                // Room for several 64 KiB packets in flight.
                var size: Int32 = 1 << 20
                setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, 4)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            }
            backend.append(FileDescriptor(rawValue: pair[0]))
            host.append(FileDescriptor(rawValue: pair[1]))
        }
        let hostEnds = host
        state.withLock {
            $0.hostEnds[plan.name] = hostEnds
            $0.plans.append(plan)
        }
        let ends = backend
        return VifAttachment(name: plan.name, queues: ends) { [self] offline in
            for fd in ends { try? fd.close() }
            state.withLock {
                if offline { $0.detached.append(plan.name) } else { $0.closed.append(plan.name) }
            }
        }
    }

    func host(_ name: String, queue: Int = 0) -> FileDescriptor? {
        state.withLock { $0.hostEnds[name].flatMap { queue < $0.count ? $0[queue] : nil } }
    }

    var detachedNames: [String] { state.withLock { $0.detached } }
    var closedNames: [String] { state.withLock { $0.closed } }
    var planList: [VifPlan] { state.withLock { $0.plans } }

    /// Writes one packet as dom0's stack would into the TAP.
    func send(_ name: String, header: VirtioNetHeader, frame: [UInt8], queue: Int = 0) -> Bool {
        guard let fd = host(name, queue: queue) else { return false }
        let result = header.bytes.withUnsafeBytes { head in
            frame.withUnsafeBytes { PacketIO.write(fd, header: head, frame: $0) }
        }
        return result == .success(true)
    }

    /// Reads the packets the backend wrote to the TAP so far.
    func received(_ name: String, queue: Int = 0) -> [(VirtioNetHeader, [UInt8])] {
        guard let fd = host(name, queue: queue) else { return [] }
        let header = UnsafeMutableRawBufferPointer.allocate(byteCount: 10, alignment: 8)
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 70_000, alignment: 8)
        defer {
            header.deallocate()
            frame.deallocate()
        }
        var out: [(VirtioNetHeader, [UInt8])] = []
        while case .success(let length?) = PacketIO.read(fd, header: header, frame: frame) {
            out.append(
                (
                    VirtioNetHeader(decoding: UnsafeRawBufferPointer(header))!,
                    Array(frame.prefix(length))
                ))
        }
        return out
    }
}

/// A guest's netfront, driven by hand: grants its TX and RX ring pages,
/// writes the frontend nodes netfront writes, sends packets from granted
/// pages and posts RX buffers, and reads the responses.
final class FakeNetfront {
    let layout: FakeDeviceLayout
    let store: InMemoryXenBusStore
    let grants: FakeGrantTable
    let channel: FakeEventChannel
    var tx: FrontRing<NetTxRequest, NetTxResponse>
    var rx: FrontRing<NetRxRequest, NetRxResponse>
    let txPage: FakeGrantTable.Grant
    let rxPage: FakeGrantTable.Grant
    let txPort: EventChannelPort
    let rxPort: EventChannelPort
    /// Data pages for TX (read-only grants) and RX buffers (writable).
    var txData: [FakeGrantTable.Grant] = []
    var rxBuffers: [UInt16: FakeGrantTable.Grant] = [:]
    var nextTxID: UInt16 = 0
    var nextRxID: UInt16 = 0

    init(
        layout: FakeDeviceLayout, store: InMemoryXenBusStore, grants: FakeGrantTable,
        events: FakeEventChannelHub, split: Bool = true, features: [String: String] = [:],
        queuePrefix: String = ""
    ) throws {
        self.layout = layout
        self.store = store
        self.grants = grants
        channel = try events.open(domain: layout.frontendDomain)
        txPage = grants.grant(from: layout.frontendDomain, pages: 1, writable: true)
        rxPage = grants.grant(from: layout.frontendDomain, pages: 1, writable: true)
        tx = try FrontRing(initializing: txPage.bytes)
        rx = try FrontRing(initializing: rxPage.bytes)
        txPort = try channel.allocateUnbound(remoteDomain: layout.backendDomain)
        rxPort = split ? try channel.allocateUnbound(remoteDomain: layout.backendDomain) : txPort
        func set(_ name: String, _ value: String) {
            store.set("\(layout.frontendPath)/\(name)", value)
        }
        set(queuePrefix + "tx-ring-ref", txPage.refs[0].description)
        set(queuePrefix + "rx-ring-ref", rxPage.refs[0].description)
        if split {
            set(queuePrefix + "event-channel-tx", txPort.description)
            set(queuePrefix + "event-channel-rx", rxPort.description)
        } else {
            set(queuePrefix + "event-channel", txPort.description)
        }
        let standard = [
            "request-rx-copy": "1", "feature-rx-notify": "1", "feature-sg": "1",
            "feature-gso-tcpv4": "1", "feature-gso-tcpv6": "1", "feature-ipv6-csum-offload": "1",
        ]
        for (name, value) in standard.merging(features, uniquingKeysWith: { $1 }) {
            set(name, value)
        }
    }

    func connect() { store.set("\(layout.frontendPath)/state", XenbusState.connected.storeValue) }
    var backendState: String? { store.value("\(layout.backendPath)/state") }

    /// Sends `frame` from fresh pages, `pieceSize` bytes per slot, with
    /// `flags` on the first slot and an optional GSO extra. Returns the ids.
    @discardableResult
    func transmit(
        _ frame: [UInt8], pieceSize: Int = 4096, flags: NetTxFlags = [],
        gso: NetExtraInfo? = nil
    ) throws -> [UInt16] {
        var ids: [UInt16] = []
        var offset = 0
        var first = true
        repeat {
            let chunk = min(pieceSize, frame.count - offset)
            let page = grants.grant(from: layout.frontendDomain, pages: 1, writable: false)
            txData.append(page)
            for index in 0..<chunk { page.bytes[index] = frame[offset + index] }
            var slotFlags: NetTxFlags = offset + chunk < frame.count ? [.moreData] : []
            if first {
                slotFlags.formUnion(flags)
                if gso != nil { slotFlags.insert(.extraInfo) }
            }
            let id = nextTxID
            nextTxID &+= 1
            try tx.enqueueRequest(
                NetTxRequest(
                    gref: page.refs[0], offset: 0, flags: slotFlags, id: id,
                    size: UInt16(first ? frame.count : chunk)))
            ids.append(id)
            if first, let gso { try tx.enqueueRequest(NetTxRequest(extraInfo: gso)) }
            first = false
            offset += chunk
        } while offset < frame.count
        pushTransmit()
        return ids
    }

    /// Writes one raw slot (hostile streams).
    func rawTransmit(_ request: NetTxRequest) throws { try tx.enqueueRequest(request) }

    func pushTransmit() {
        if tx.pushRequests() { try? channel.notify(txPort) }
    }

    /// Every TX response so far.
    func transmitResponses() throws -> [NetTxResponse] {
        var out: [NetTxResponse] = []
        while let response = try tx.nextResponse() { out.append(response) }
        return out
    }

    /// Posts `count` RX buffers (one writable page each).
    func postBuffers(_ count: Int) throws {
        for _ in 0..<count {
            let page = grants.grant(from: layout.frontendDomain, pages: 1, writable: true)
            let id = nextRxID
            nextRxID &+= 1
            rxBuffers[id] = page
            try rx.enqueueRequest(NetRxRequest(id: id, gref: page.refs[0]))
        }
        if rx.pushRequests() { try? channel.notify(rxPort) }
    }

    /// Every RX response so far.
    func receiveResponses() throws -> [NetRxResponse] {
        var out: [NetRxResponse] = []
        while let response = try rx.nextResponse() { out.append(response) }
        return out
    }

    /// The bytes a data response's buffer holds.
    func bytes(of response: NetRxResponse) -> [UInt8] {
        guard let page = rxBuffers[response.id], response.status > 0 else { return [] }
        return Array(
            page.bytes[Int(response.offset)..<(Int(response.offset) + Int(response.status))])
    }
}
