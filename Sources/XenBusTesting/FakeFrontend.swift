import XenBus

/// What a toolstack writes for one PV device, for tests: the backend
/// directory (`frontend`, `frontend-id`, `online`, `state` = 1, plus extra
/// nodes such as `params`) and the frontend directory (`backend`,
/// `backend-id`, `state` = 1).
public struct FakeDeviceLayout: Sendable {
    public var deviceType: String
    public var backendDomain: DomainID
    public var frontendDomain: DomainID
    public var deviceID: UInt32

    public init(
        deviceType: String = "vbd", backendDomain: DomainID = DomainID(0),
        frontendDomain: DomainID, deviceID: UInt32
    ) {
        self.deviceType = deviceType
        self.backendDomain = backendDomain
        self.frontendDomain = frontendDomain
        self.deviceID = deviceID
    }

    /// `/local/domain/<backend>`.
    public var backendHome: String { "/local/domain/\(backendDomain)" }
    /// `/local/domain/<backend>/backend/<type>/<domid>/<devid>`.
    public var backendPath: String {
        "\(backendHome)/backend/\(deviceType)/\(frontendDomain)/\(deviceID)"
    }
    /// `/local/domain/<domid>/device/<type>/<devid>`.
    public var frontendPath: String {
        "/local/domain/\(frontendDomain)/device/\(deviceType)/\(deviceID)"
    }
    /// Where `xenbus_dev_fatal` writes the backend's error.
    public var errorNode: String {
        "\(backendHome)/error/backend/\(deviceType)/\(frontendDomain)/\(deviceID)/error"
    }

    /// Writes both directories, frontend first and the backend's `state`
    /// last (the backend adopts on it).
    public func create(in store: InMemoryXenBusStore, backendNodes: [String: String] = [:]) {
        store.set("\(frontendPath)/backend", backendPath)
        store.set("\(frontendPath)/backend-id", backendDomain.description)
        store.set("\(frontendPath)/state", XenbusState.initialising.storeValue)
        store.set("\(backendPath)/frontend", frontendPath)
        store.set("\(backendPath)/frontend-id", frontendDomain.description)
        store.set("\(backendPath)/online", "1")
        for (name, value) in backendNodes.sorted(by: { $0.key < $1.key }) {
            store.set("\(backendPath)/\(name)", value)
        }
        store.set("\(backendPath)/state", XenbusState.initialising.storeValue)
    }
}

/// The guest side of one device for backend tests: grants ring pages,
/// offers an event channel, writes the frontend's nodes and state the way
/// Linux blkfront/netfront do.
public final class FakeFrontend {
    public let layout: FakeDeviceLayout
    public let store: InMemoryXenBusStore
    public let grants: FakeGrantTable
    /// The guest's event channel handle.
    public let channel: FakeEventChannel
    /// The ring pages last published.
    public private(set) var ring: FakeGrantTable.Grant?
    /// The event channel port last offered.
    public private(set) var port: EventChannelPort?

    public init(
        layout: FakeDeviceLayout, store: InMemoryXenBusStore, grants: FakeGrantTable,
        events: FakeEventChannelHub
    ) throws(XenBusError) {
        self.layout = layout
        self.store = store
        self.grants = grants
        self.channel = try events.open(domain: layout.frontendDomain)
    }

    /// Writes the frontend's `state` node.
    public func setState(_ state: XenbusState) {
        store.set("\(layout.frontendPath)/state", state.storeValue)
    }

    /// Writes a frontend node (relative name), e.g. a hostile value.
    public func setNode(_ name: String, _ value: String) {
        store.set("\(layout.frontendPath)/\(name)", value)
    }

    /// Reads the backend's `state` node.
    public var backendState: String? {
        store.value("\(layout.backendPath)/state")
    }

    /// Grants `pages` fresh ring pages to the backend and offers an event
    /// channel, then writes `ring-ref` (one page, `pageOrder` nil) or
    /// `ring-page-order` + `ring-ref0…`, `event-channel` and `protocol`.
    /// Returns the grant (whose bytes are the guest's view of the ring).
    @discardableResult
    public func publishRing(
        pageOrder: UInt32? = nil, refNode: String = "ring-ref",
        orderNode: String = "ring-page-order", eventChannelNode: String = "event-channel",
        protocolName: String? = "x86_64-abi"
    ) throws(XenBusError) -> FakeGrantTable.Grant {
        let pages = 1 << Int(pageOrder ?? 0)
        let grant = grants.grant(from: layout.frontendDomain, pages: pages, writable: true)
        let port = try channel.allocateUnbound(remoteDomain: layout.backendDomain)
        if let pageOrder {
            setNode(orderNode, String(pageOrder))
            for (index, ref) in grant.refs.enumerated() {
                setNode("\(refNode)\(index)", ref.description)
            }
        } else {
            setNode(refNode, grant.refs[0].description)
        }
        setNode(eventChannelNode, port.description)
        if let protocolName { setNode("protocol", protocolName) }
        ring = grant
        self.port = port
        return grant
    }
}
