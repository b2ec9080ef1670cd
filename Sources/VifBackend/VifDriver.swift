import DataPath
import NetBackend
import NetConf
import Synchronization
import XenBus

/// The counters of every connected vif, for the service's reports.
public final class VifRegistry: Sendable {
    private let vifs = Mutex<[BackendDeviceKey: (name: String, counters: VifCounters)]>([:])

    public init() {}

    func add(_ key: BackendDeviceKey, name: String, counters: VifCounters) {
        vifs.withLock { $0[key] = (name, counters) }
    }

    func remove(_ key: BackendDeviceKey, counters: VifCounters) {
        vifs.withLock { table in
            if table[key]?.counters === counters { table[key] = nil }
        }
    }

    /// Every connected vif's name and counters, by device.
    public var snapshot: [(key: BackendDeviceKey, name: String, counters: VifCounters.Snapshot)] {
        vifs.withLock { table in
            table.sorted { $0.key < $1.key }.map {
                ($0.key, $0.value.name, $0.value.counters.snapshot)
            }
        }
    }
}

/// netback as a xenbus driver (`backend/vif/<domid>/<devid>`): publishes
/// netif's features, and on the frontend's Connected maps each queue's TX
/// and RX rings (`tx-ring-ref`, `rx-ring-ref`, under `queue-N/` with
/// several queues), binds its event channel(s) (`event-channel`, or
/// `event-channel-tx` + `-rx`), creates the TAP with a queue each, brings
/// it online, and serves every queue on a data-path worker of its own.
///
/// netback keeps no ring journal: packets may be lost or repeated, so a
/// successor resumes each ring at its published `rsp_prod` and takes the
/// slots not yet answered again (a packet the killed backend had sent but
/// not answered goes out twice; TCP copes, as with any duplicate).
public struct VifDriver: BackendDeviceDriver {
    /// One connected vif: its workers, its TAP, its counters.
    public final class Connection: Sendable {
        let workers: [DataPathWorker]
        let attachment: VifAttachment
        public let counters: VifCounters
        public let name: String

        init(workers: [DataPathWorker], attachment: VifAttachment, counters: VifCounters) {
            self.workers = workers
            self.attachment = attachment
            self.counters = counters
            self.name = attachment.name
        }
    }

    public let deviceType = "vif"
    /// netfront goes Initialising → Connected once its rings are published.
    public let connectTrigger = FrontendConnectTrigger.connected
    let grants: any GrantTable
    let openEventChannel: @Sendable () throws(XenBusError) -> any EventChannel
    let network: any VifNetwork
    let maxQueues: Int
    let budget: Int
    let log: @Sendable (String) -> Void
    /// The counters of the vifs this driver connected.
    public let registry: VifRegistry

    /// - Parameters:
    ///   - grants: copies packets in and out of the guest, maps the rings.
    ///   - openEventChannel: a new event channel handle (one per worker).
    ///   - network: creates and brings online each vif's TAP.
    ///   - maxQueues: `multi-queue-max-queues` (queues per vif, a worker each).
    ///   - budget: slots or packets per ring per worker round.
    public init(
        grants: any GrantTable,
        openEventChannel: @escaping @Sendable () throws(XenBusError) -> any EventChannel,
        network: any VifNetwork, maxQueues: Int = 2, budget: Int = 64,
        registry: VifRegistry = VifRegistry(), log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.grants = grants
        self.openEventChannel = openEventChannel
        self.network = network
        self.maxQueues = max(1, maxQueues)
        self.budget = budget
        self.registry = registry
        self.log = log
    }

    public func probe(_ device: BackendDeviceContext) async throws -> [BackendNode] {
        if let mac = try await device.backendValue("mac"), parseMAC(mac) == nil {
            throw XenBusError.backendNodeInvalid(
                path: "\(device.backendPath)/mac", value: mac,
                expected: "a MAC address such as 00:16:3e:12:34:56")
        }
        return [
            BackendNode("feature-sg", "1"),
            BackendNode("feature-gso-tcpv4", "1"),
            BackendNode("feature-gso-tcpv6", "1"),
            BackendNode("feature-ipv6-csum-offload", "1"),
            BackendNode("feature-rx-copy", "1"),
            BackendNode("feature-rx-flip", "0"),
            BackendNode("feature-split-event-channels", "1"),
            BackendNode("multi-queue-max-queues", String(maxQueues)),
        ]
    }

    /// A frontend feature flag: absent is 0, anything but 0 or 1 a guest fault.
    func flag(_ device: BackendDeviceContext, _ node: String) async throws(XenBusError) -> Bool {
        guard let text = try await device.frontendValue(node) else { return false }
        switch text {
        case "0": return false
        case "1": return true
        default:
            throw .frontendNodeInvalid(
                path: "\(device.frontendPath)/\(node)", value: text, expected: "0 or 1")
        }
    }

    public func connect(_ device: BackendDeviceContext) async throws -> BackendConnectResult<
        Connection
    > {
        guard try await flag(device, "request-rx-copy") else {
            throw XenBusError.guestProtocol(
                "the frontend did not request RX copy (request-rx-copy); page flipping is not supported"
            )
        }
        guard try await flag(device, "feature-rx-notify") else {
            throw XenBusError.guestProtocol(
                "the frontend does not notify when it posts RX buffers (feature-rx-notify)")
        }
        let queueCount: UInt32 = try await device.frontendUnsigned(
            "multi-queue-num-queues", default: 1)
        guard queueCount >= 1, queueCount <= maxQueues else {
            throw XenBusError.frontendNodeInvalid(
                path: "\(device.frontendPath)/multi-queue-num-queues", value: String(queueCount),
                expected: "1 to \(maxQueues) queues")
        }
        let noChecksumOffload = try await flag(device, "feature-no-csum-offload")
        let ipv6ChecksumOffload = try await flag(device, "feature-ipv6-csum-offload")
        let features = VifGuestFeatures(
            scatterGather: try await flag(device, "feature-sg"),
            gsoTCPv4: try await flag(device, "feature-gso-tcpv4"),
            gsoTCPv6: try await flag(device, "feature-gso-tcpv6"),
            checksumOffload: !noChecksumOffload && ipv6ChecksumOffload)

        // Everything the guest wrote is read and checked before anything
        // is created in dom0.
        struct QueueNodes {
            var tx: FrontendRing
            var rx: FrontendRing
            var txPort: EventChannelPort
            var rxPort: EventChannelPort?
        }
        var nodes: [QueueNodes] = []
        for index in 0..<Int(queueCount) {
            let prefix = queueCount == 1 ? "" : "queue-\(index)/"
            let tx = try await device.frontendRing(refNode: prefix + "tx-ring-ref", orderNode: nil)
            let rx = try await device.frontendRing(refNode: prefix + "rx-ring-ref", orderNode: nil)
            if try await device.frontendValue(prefix + "event-channel-tx") != nil {
                nodes.append(
                    QueueNodes(
                        tx: tx, rx: rx,
                        txPort: try await device.frontendEventChannel(prefix + "event-channel-tx"),
                        rxPort: try await device.frontendEventChannel(prefix + "event-channel-rx")))
            } else {
                nodes.append(
                    QueueNodes(
                        tx: tx, rx: rx,
                        txPort: try await device.frontendEventChannel(prefix + "event-channel"),
                        rxPort: nil))
            }
        }

        let entries = VifBackendEntries(
            bridge: try await device.backendValue("bridge"),
            ip: try await device.backendValue("ip"),
            vifname: try await device.backendValue("vifname"),
            mac: try await device.backendValue("mac"),
            script: try await device.backendValue("script"))
        let mtuText = try await device.backendValue("mtu")
        let mtu: UInt32
        if let mtuText {
            guard let value = UInt32(mtuText), value >= 68, value <= 65_521 else {
                throw XenBusError.backendNodeInvalid(
                    path: "\(device.backendPath)/mtu", value: mtuText, expected: "68 to 65521")
            }
            mtu = value
        } else {
            mtu = 1500
        }
        let name =
            entries.vifname.flatMap { $0.isEmpty ? nil : $0 }
            ?? "vif\(device.frontendDomain.rawValue).\(device.key.deviceID)"
        let plan = VifPlan(
            key: device.key, name: name, queueCount: Int(queueCount),
            offloads: features.tapOffloads, mtu: mtu, entries: entries)

        let domain = device.frontendDomain
        var workers: [DataPathWorker] = []
        let counters = VifCounters()
        let attachment: VifAttachment
        do {
            attachment = try network.attach(plan)
        } catch {
            throw XenBusError.driver("\(name): \(error)")
        }
        do {
            for (index, queue) in nodes.enumerated() {
                let channel = try openEventChannel()
                let txBinding = try EventChannelBinding(
                    channel: channel, remoteDomain: domain, remotePort: queue.txPort)
                let rxBinding =
                    try queue.rxPort.map { port throws(XenBusError) in
                        try EventChannelBinding(
                            channel: channel, remoteDomain: domain, remotePort: port)
                    } ?? txBinding
                let txMapping = try grants.map(domain: domain, refs: queue.tx.refs, writable: true)
                let rxMapping = try grants.map(domain: domain, refs: queue.rx.refs, writable: true)
                let txRing: BackRing<NetTxRequest, NetTxResponse>
                let rxRing: BackRing<NetRxRequest, NetRxResponse>
                if device.isResuming {
                    txRing = try BackRing(
                        resuming: try txMapping.writableBytes(), requestConsumer: nil,
                        keepAlive: txMapping)
                    rxRing = try BackRing(
                        resuming: try rxMapping.writableBytes(), requestConsumer: nil,
                        keepAlive: rxMapping)
                } else {
                    txRing = try BackRing(mapping: txMapping)
                    rxRing = try BackRing(mapping: rxMapping)
                }
                let queueName = "\(name)-q\(index)"
                let worker = try DataPathWorker(
                    name: queueName, eventChannel: channel, budget: budget
                ) { _, error in device.reportFault(error) }
                let vifQueue = VifQueue(
                    name: queueName, domain: domain, grants: grants,
                    tap: attachment.queues[index], features: features, counters: counters,
                    txRing: txRing, txBinding: txBinding, rxRing: rxRing, rxBinding: rxBinding)
                if queue.rxPort != nil {
                    worker.attach(VifEndpoint(vifQueue, .transmit), port: txBinding.port)
                    worker.attach(VifEndpoint(vifQueue, .receiveRing), port: rxBinding.port)
                } else {
                    worker.attach(VifEndpoint(vifQueue, .bothRings), port: txBinding.port)
                }
                try worker.attach(
                    VifEndpoint(vifQueue, .tap), descriptor: attachment.queues[index])
                workers.append(worker)
            }
            for worker in workers { try worker.start() }
        } catch {
            for worker in workers { await worker.stop() }
            attachment.detach()
            throw error
        }
        registry.add(device.key, name: attachment.name, counters: counters)
        log(
            "\(attachment.name): connected, \(queueCount) queue(s), offloads to the guest "
                + "0x\(String(plan.offloads.rawValue, radix: 16))"
                + (device.isResuming ? ", resumed from a previous netback" : ""))
        return BackendConnectResult(
            connection: Connection(workers: workers, attachment: attachment, counters: counters))
    }

    public func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async {
        for worker in connection.workers { await worker.stop() }
        connection.attachment.detach()
        registry.remove(device.key, counters: connection.counters)
        log("\(connection.name): disconnected; \(connection.counters.snapshot)")
    }

    /// The process is stopping with the vif Connected: the TAP goes (it
    /// cannot outlive its descriptors) and the successor creates it again.
    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        for worker in connection.workers { await worker.stop() }
        connection.attachment.close()
        registry.remove(device.key, counters: connection.counters)
    }
}

/// Six hex bytes separated by colons.
func parseMAC(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 6 else { return nil }
    var bytes: [UInt8] = []
    for part in parts {
        guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
        bytes.append(byte)
    }
    return bytes
}
