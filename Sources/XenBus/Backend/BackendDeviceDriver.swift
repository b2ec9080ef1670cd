/// Identifies one backend device: `backend/<type>/<frontendDomain>/<deviceID>`.
public struct BackendDeviceKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let frontendDomain: DomainID
    public let deviceID: UInt32

    public init(frontendDomain: DomainID, deviceID: UInt32) {
        self.frontendDomain = frontendDomain
        self.deviceID = deviceID
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.frontendDomain.rawValue, lhs.deviceID) < (rhs.frontendDomain.rawValue, rhs.deviceID)
    }

    public var description: String { "\(frontendDomain)/\(deviceID)" }
}

/// When a backend connects: blkback connects as soon as the frontend is
/// Initialised (rings published); netback waits for Connected (netfront goes
/// Initialising → Connected directly once the backend is in InitWait).
public enum FrontendConnectTrigger: Sendable, Equatable {
    case initialisedOrConnected
    case connected
}

/// A store node to publish in the backend directory: `name` is relative to
/// it (e.g. `feature-flush-cache`, `sectors`).
public struct BackendNode: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// What a successful connect hands back: the live connection (rings
/// mapped, event channel bound, worker started) and the nodes to publish
/// before the backend switches to Connected.
public struct BackendConnectResult<Connection> {
    public var connection: Connection
    public var publish: [BackendNode]

    public init(connection: Connection, publish: [BackendNode] = []) {
        self.connection = connection
        self.publish = publish
    }
}

/// The device-specific half of a backend (blkback, netback, ...); the
/// xenbus handshake around it is ``BackendDevice``'s.
///
/// Errors thrown from `probe` and `connect` end the handshake the way
/// `xenbus_dev_fatal` does: the error text goes to the device's `error`
/// node and the backend switches to Closing. Throw ``XenBusError`` (guest
/// faults, node errors from the ``BackendDeviceContext`` readers) to keep
/// the errno and the guest-fault flag; any other error is reported as EIO.
public protocol BackendDeviceDriver: Sendable {
    /// One connected device's live state (mapped ring, bound event channel,
    /// data-path worker), owned by the device's state machine.
    associatedtype Connection

    /// What the backend serves, e.g. `vbd`, `vif`, `console`: the
    /// `<type>` in `backend/<type>/...`.
    var deviceType: String { get }

    /// Which frontend state starts the connect.
    var connectTrigger: FrontendConnectTrigger { get }

    /// Reads the backend's configuration (written by the toolstack) and
    /// returns the feature nodes to publish before InitWait. Called before
    /// each handshake (again on reconnect), so it must not hold resources:
    /// those belong to the connection.
    func probe(_ device: BackendDeviceContext) async throws -> [BackendNode]

    /// Reads the frontend's nodes (ring refs, event channel, protocol),
    /// maps and binds, starts the data path, and returns the connection
    /// plus the nodes to publish before Connected. On throwing it must
    /// have released whatever it acquired.
    func connect(_ device: BackendDeviceContext) async throws -> BackendConnectResult<Connection>

    /// Stops the data path and releases the connection (unmap, unbind).
    /// Called exactly once per successful connect, unless ``suspend(_:_:)``
    /// is called instead.
    func disconnect(_ device: BackendDeviceContext, _ connection: Connection) async

    /// The backend process is stopping while the device stays Connected
    /// for a successor to resume: stop the data path and release the
    /// connection, but keep what the successor needs (the ring journal).
    /// The default is ``disconnect(_:_:)``.
    func suspend(_ device: BackendDeviceContext, _ connection: Connection) async
}

extension BackendDeviceDriver {
    public var connectTrigger: FrontendConnectTrigger { .initialisedOrConnected }

    public func suspend(_ device: BackendDeviceContext, _ connection: Connection) async {
        await disconnect(device, connection)
    }
}

/// The frontend's ABI (`protocol` node, io/protocols.h).
public enum FrontendABI: String, Sendable, Equatable {
    /// No `protocol` node: the backend's own ABI.
    case native
    case x86Abi32 = "x86_32-abi"
    case x86Abi64 = "x86_64-abi"
    case arm = "arm-abi"
}

/// Ring pages a frontend published.
public struct FrontendRing: Sendable, Equatable {
    /// Grant refs of the ring pages, in order.
    public var refs: [GrantRef]
    /// `ring-page-order`, 0 for the single-page form.
    public var pageOrder: UInt32

    public init(refs: [GrantRef], pageOrder: UInt32) {
        self.refs = refs
        self.pageOrder = pageOrder
    }
}

/// A fault a data path reported for one connection of a device.
public struct BackendFault: Sendable, Equatable {
    public var error: XenBusError
    /// Which connection reported it (``BackendDeviceContext/connectionID``);
    /// faults of a connection that is already gone are ignored.
    public var connectionID: UInt64

    public init(error: XenBusError, connectionID: UInt64) {
        self.error = error
        self.connectionID = connectionID
    }
}

/// One device as its driver sees it: where it lives in the store and
/// strict readers for the values the guest or the toolstack wrote.
public struct BackendDeviceContext: Sendable {
    /// The store, for anything the readers below do not cover.
    public let store: any XenBusStore
    public let deviceType: String
    public let key: BackendDeviceKey
    /// `/local/domain/<backend>/backend/<type>/<domid>/<devid>`.
    public let backendPath: String
    /// The frontend directory named by the backend's `frontend` node.
    public let frontendPath: String
    /// Counts connects of this device: the context given to `connect` and
    /// `disconnect` carries the connection's number (0 outside a connection).
    public let connectionID: UInt64
    /// True when `connect` takes over a live connection from a previous
    /// backend process (the device was Connected when this process adopted
    /// it): attach to the ring's shared indices and recover its journal
    /// instead of starting the ring afresh. The frontend's port is bound
    /// again as usual (its old dom0 end closed with the old process).
    public let isResuming: Bool
    private let faultSink: @Sendable (BackendFault) -> Void

    public init(
        store: any XenBusStore, deviceType: String, key: BackendDeviceKey,
        backendPath: String, frontendPath: String, connectionID: UInt64 = 0,
        isResuming: Bool = false, faultSink: @escaping @Sendable (BackendFault) -> Void
    ) {
        self.store = store
        self.deviceType = deviceType
        self.key = key
        self.backendPath = backendPath
        self.frontendPath = frontendPath
        self.connectionID = connectionID
        self.isResuming = isResuming
        self.faultSink = faultSink
    }

    /// The same device, for connection number `id`.
    public func forConnection(_ id: UInt64, resuming: Bool = false) -> BackendDeviceContext {
        BackendDeviceContext(
            store: store, deviceType: deviceType, key: key, backendPath: backendPath,
            frontendPath: frontendPath, connectionID: id, isResuming: resuming,
            faultSink: faultSink)
    }

    /// The guest domain.
    public var frontendDomain: DomainID { key.frontendDomain }

    /// Tells the device's state machine that the data path found a fault
    /// (e.g. a ring guest fault): it disconnects, writes the error node and
    /// switches to Closing, unless this context's connection is already
    /// gone. Safe to call from any thread.
    public func reportFault(_ error: XenBusError) {
        faultSink(BackendFault(error: error, connectionID: connectionID))
    }

    // MARK: backend nodes (written by the toolstack)

    /// A backend node, nil if absent.
    public func backendValue(_ node: String) async throws(XenBusError) -> String? {
        try await storeRead(store, "\(backendPath)/\(node)")
    }

    /// A backend node that must exist.
    public func requireBackendValue(_ node: String) async throws(XenBusError) -> String {
        let path = "\(backendPath)/\(node)"
        guard let value = try await storeRead(store, path) else {
            throw .backendNodeMissing(path: path)
        }
        return value
    }

    // MARK: frontend nodes (written by the guest: hostile)

    /// A frontend node, nil if absent.
    public func frontendValue(_ node: String) async throws(XenBusError) -> String? {
        try await storeRead(store, "\(frontendPath)/\(node)")
    }

    /// A frontend node that must exist.
    public func requireFrontendValue(_ node: String) async throws(XenBusError) -> String {
        let path = "\(frontendPath)/\(node)"
        guard let value = try await storeRead(store, path) else {
            throw .frontendNodeMissing(path: path)
        }
        return value
    }

    /// A decimal frontend node; `defaultValue` when absent (nil: required).
    public func frontendUnsigned<T: FixedWidthInteger & UnsignedInteger>(
        _ node: String, default defaultValue: T? = nil
    ) async throws(XenBusError) -> T {
        let path = "\(frontendPath)/\(node)"
        guard let text = try await storeRead(store, path) else {
            if let defaultValue { return defaultValue }
            throw .frontendNodeMissing(path: path)
        }
        guard let value: T = parseDecimal(text) else {
            throw .frontendNodeInvalid(
                path: path, value: text, expected: "a decimal number up to \(T.max)")
        }
        return value
    }

    /// An event channel port the frontend allocated for us
    /// (`event-channel`, or e.g. `event-channel-tx`).
    public func frontendEventChannel(_ node: String = "event-channel")
        async throws(XenBusError) -> EventChannelPort
    {
        let path = "\(frontendPath)/\(node)"
        let text = try await requireFrontendValue(node)
        guard let value: UInt32 = parseDecimal(text), EventChannelPort.validRange.contains(value)
        else {
            throw .frontendNodeInvalid(
                path: path, value: text,
                expected:
                    "an event channel port from \(EventChannelPort.validRange.lowerBound) "
                    + "to \(EventChannelPort.validRange.upperBound)")
        }
        return EventChannelPort(value)
    }

    /// The ring's grant refs, in either form blkfront writes: a single
    /// `ring-ref`, or `ring-page-order` N with `ring-ref0` … `ring-ref<2^N-1>`.
    /// An order above `maxPageOrder` (what the backend advertised in
    /// `max-ring-page-order`, at most ``ringPageOrderLimit``) is a guest
    /// fault. `refNode` names the ref node (`tx-ring-ref` for netif);
    /// `orderNode` nil means single-page only.
    public func frontendRing(
        refNode: String = "ring-ref", orderNode: String? = "ring-page-order",
        maxPageOrder: UInt32 = 0
    ) async throws(XenBusError) -> FrontendRing {
        let maxPageOrder = min(maxPageOrder, Self.ringPageOrderLimit)
        var order: UInt32? = nil
        if let orderNode {
            let orderPath = "\(frontendPath)/\(orderNode)"
            if let text = try await storeRead(store, orderPath) {
                guard let value: UInt32 = parseDecimal(text), value <= maxPageOrder else {
                    throw .frontendNodeInvalid(
                        path: orderPath, value: text,
                        expected: "a ring page order from 0 to \(maxPageOrder)")
                }
                order = value
            }
        }
        guard let order else {
            return FrontendRing(refs: [try await grantRef(refNode)], pageOrder: 0)
        }
        var refs: [GrantRef] = []
        for index in 0..<(1 << order) {
            refs.append(try await grantRef("\(refNode)\(index)"))
        }
        return FrontendRing(refs: refs, pageOrder: order)
    }

    /// The largest ring page order the reader accepts (256 pages; Linux
    /// frontends use at most 4).
    public static let ringPageOrderLimit: UInt32 = 8

    /// The frontend's ABI from its `protocol` node (absent: native).
    public func frontendProtocol() async throws(XenBusError) -> FrontendABI {
        let path = "\(frontendPath)/protocol"
        guard let text = try await storeRead(store, path) else { return .native }
        guard let abi = FrontendABI(rawValue: text), abi != .native else {
            throw .frontendNodeInvalid(
                path: path, value: text, expected: "x86_32-abi, x86_64-abi or arm-abi")
        }
        return abi
    }

    private func grantRef(_ node: String) async throws(XenBusError) -> GrantRef {
        let path = "\(frontendPath)/\(node)"
        let text = try await requireFrontendValue(node)
        guard let value: UInt32 = parseDecimal(text) else {
            throw .frontendNodeInvalid(
                path: path, value: text, expected: "a grant reference (decimal, 32 bits)")
        }
        return GrantRef(value)
    }
}

// MARK: store calls with errors wrapped

func storeRead(_ store: any XenBusStore, _ path: String) async throws(XenBusError) -> String? {
    do { return try await store.read(path) } catch {
        throw .store(operation: "read", path: path, reason: String(describing: error))
    }
}

func storeWrite(_ store: any XenBusStore, _ path: String, _ value: String)
    async throws(XenBusError)
{
    do { try await store.write(path, value) } catch {
        throw .store(operation: "write", path: path, reason: String(describing: error))
    }
}

func storeDirectory(_ store: any XenBusStore, _ path: String) async throws(XenBusError)
    -> [String]
{
    do { return try await store.directory(path) } catch {
        throw .store(operation: "directory", path: path, reason: String(describing: error))
    }
}

func storeRemove(_ store: any XenBusStore, _ path: String) async throws(XenBusError) {
    do { try await store.remove(path) } catch {
        throw .store(operation: "remove", path: path, reason: String(describing: error))
    }
}
