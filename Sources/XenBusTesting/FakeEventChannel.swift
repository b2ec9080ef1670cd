import Synchronization
import SystemPackage
import XenBus

/// The hypervisor's event channel switch, faked for tests: hands out one
/// ``FakeEventChannel`` per handle, connects interdomain ports, and delivers
/// notifications through a pipe per handle, so ``EventChannel/fileDescriptor``
/// really polls readable and ``EventChannel/pending()`` really blocks.
///
/// Delivery follows /dev/xen/evtchn: a delivered port is masked until
/// unmasked; notifications meanwhile leave it pending and are delivered
/// once on unmask.
public final class FakeEventChannelHub: Sendable {
    struct PortKey: Hashable {
        var domain: DomainID
        var port: UInt32
    }

    enum Binding {
        case unbound(remote: DomainID)
        case interdomain(PortKey)
    }

    struct PortState {
        var handle: Int
        var binding: Binding
        var masked = false
        var pending = false
        var sent = 0
        var delivered = 0
    }

    struct State {
        var ports: [PortKey: PortState] = [:]
        var nextPort: [DomainID: UInt32] = [:]
        var writers: [Int: FileDescriptor] = [:]
        var nextHandle = 0
    }

    let state = Mutex(State())

    public init() {}

    /// Opens a handle for `domain` (the guest side in tests is a handle of
    /// the guest's domain ID).
    public func open(domain: DomainID) throws(XenBusError) -> FakeEventChannel {
        let pipe: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do {
            pipe = try FileDescriptor.pipe()
        } catch {
            throw .eventChannel(operation: "open (pipe)", errno: error as? Errno ?? .ioError)
        }
        let handle = state.withLock { state in
            let handle = state.nextHandle
            state.nextHandle += 1
            state.writers[handle] = pipe.writeEnd
            return handle
        }
        return FakeEventChannel(hub: self, domain: domain, handle: handle, reader: pipe.readEnd)
    }

    /// Notifications sent on `port` of `domain` so far.
    public func sentCount(domain: DomainID, port: EventChannelPort) -> Int {
        state.withLock { $0.ports[PortKey(domain: domain, port: port.rawValue)]?.sent ?? 0 }
    }

    /// Times `port` of `domain` was delivered (written to its handle's pipe).
    public func deliveredCount(domain: DomainID, port: EventChannelPort) -> Int {
        state.withLock { $0.ports[PortKey(domain: domain, port: port.rawValue)]?.delivered ?? 0 }
    }

    /// Whether `port` of `domain` exists.
    public func isBound(domain: DomainID, port: EventChannelPort) -> Bool {
        state.withLock { $0.ports[PortKey(domain: domain, port: port.rawValue)] != nil }
    }

    /// Ports that exist, all domains.
    public var portCount: Int { state.withLock { $0.ports.count } }

    // MARK: used by FakeEventChannel

    func allocate(_ state: inout State, domain: DomainID, handle: Int, binding: Binding)
        -> PortKey
    {
        let port = state.nextPort[domain, default: 1]
        state.nextPort[domain] = port + 1
        let key = PortKey(domain: domain, port: port)
        state.ports[key] = PortState(handle: handle, binding: binding)
        return key
    }

    /// Marks `key` pending and writes it to its handle's pipe unless masked.
    /// Called with the lock held; a 4-byte pipe write does not block here
    /// because each port has at most one undelivered write (it is masked).
    func raise(_ state: inout State, _ key: PortKey) {
        guard var port = state.ports[key] else { return }
        if port.masked {
            port.pending = true
        } else {
            port.masked = true
            port.pending = false
            port.delivered += 1
            if let writer = state.writers[port.handle] {
                var raw = key.port
                _ = try? withUnsafeBytes(of: &raw) { try writer.writeAll($0) }
            }
        }
        state.ports[key] = port
    }

    func close(handle: Int) {
        let writer = state.withLock { state -> FileDescriptor? in
            for (key, port) in state.ports where port.handle == handle {
                Self.unbind(&state, key)
            }
            return state.writers.removeValue(forKey: handle)
        }
        try? writer?.close()
    }

    /// Removes a port; its peer becomes unbound (rebindable by this domain),
    /// as when one end of an interdomain channel closes.
    static func unbind(_ state: inout State, _ key: PortKey) {
        guard let port = state.ports.removeValue(forKey: key) else { return }
        if case .interdomain(let peer) = port.binding {
            state.ports[peer]?.binding = .unbound(remote: key.domain)
        }
    }
}

/// One event channel handle of ``FakeEventChannelHub``.
public final class FakeEventChannel: EventChannel {
    public let domain: DomainID
    private let hub: FakeEventChannelHub
    private let handle: Int
    private let reader: FileDescriptor

    init(hub: FakeEventChannelHub, domain: DomainID, handle: Int, reader: FileDescriptor) {
        self.hub = hub
        self.domain = domain
        self.handle = handle
        self.reader = reader
    }

    deinit {
        hub.close(handle: handle)
        try? reader.close()
    }

    public var fileDescriptor: FileDescriptor { reader }

    public func bindInterdomain(remoteDomain: DomainID, remotePort: EventChannelPort)
        throws(XenBusError) -> EventChannelPort
    {
        let remote = FakeEventChannelHub.PortKey(domain: remoteDomain, port: remotePort.rawValue)
        let local: FakeEventChannelHub.PortKey? = hub.state.withLock { state in
            guard let peer = state.ports[remote], case .unbound(let allowed) = peer.binding,
                allowed == domain
            else { return nil }
            let key = hub.allocate(
                &state, domain: domain, handle: handle, binding: .interdomain(remote))
            state.ports[remote]?.binding = .interdomain(key)
            return key
        }
        guard let local else {
            throw .eventChannel(
                operation: "bind interdomain \(remoteDomain):\(remotePort)",
                errno: .invalidArgument)
        }
        return EventChannelPort(local.port)
    }

    public func allocateUnbound(remoteDomain: DomainID) throws(XenBusError) -> EventChannelPort {
        let key = hub.state.withLock { state in
            hub.allocate(
                &state, domain: domain, handle: handle, binding: .unbound(remote: remoteDomain))
        }
        return EventChannelPort(key.port)
    }

    public func unbind(_ port: EventChannelPort) throws(XenBusError) {
        let key = FakeEventChannelHub.PortKey(domain: domain, port: port.rawValue)
        let found = hub.state.withLock { state in
            guard state.ports[key]?.handle == handle else { return false }
            FakeEventChannelHub.unbind(&state, key)
            return true
        }
        guard found else {
            throw .eventChannel(operation: "unbind \(port)", errno: .invalidArgument)
        }
    }

    public func notify(_ port: EventChannelPort) throws(XenBusError) {
        let key = FakeEventChannelHub.PortKey(domain: domain, port: port.rawValue)
        let found = hub.state.withLock { state in
            guard let local = state.ports[key], local.handle == handle else { return false }
            state.ports[key]?.sent += 1
            // Sending on an unbound port is accepted and goes nowhere, as in Xen.
            if case .interdomain(let peer) = local.binding { hub.raise(&state, peer) }
            return true
        }
        guard found else {
            throw .eventChannel(operation: "notify \(port)", errno: .invalidArgument)
        }
    }

    public func unmask(_ port: EventChannelPort) throws(XenBusError) {
        let key = FakeEventChannelHub.PortKey(domain: domain, port: port.rawValue)
        let found = hub.state.withLock { state in
            guard let local = state.ports[key], local.handle == handle else { return false }
            state.ports[key]?.masked = false
            if local.pending { hub.raise(&state, key) }
            return true
        }
        guard found else {
            throw .eventChannel(operation: "unmask \(port)", errno: .invalidArgument)
        }
    }

    public func pending() throws(XenBusError) -> EventChannelPort {
        var raw: UInt32 = 0
        do {
            let count = try withUnsafeMutableBytes(of: &raw) { try reader.read(into: $0) }
            guard count == MemoryLayout<UInt32>.size else {
                throw XenBusError.eventChannel(operation: "pending (short read)", errno: .ioError)
            }
        } catch let error as XenBusError {
            throw error
        } catch {
            throw .eventChannel(operation: "pending", errno: error as? Errno ?? .ioError)
        }
        return EventChannelPort(raw)
    }
}
