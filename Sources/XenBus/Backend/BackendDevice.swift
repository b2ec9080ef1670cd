import Logging

/// A snapshot of one device for status displays and tests.
public struct BackendDeviceStatus: Sendable, Equatable {
    public var key: BackendDeviceKey
    public var phase: BackendPhase
    /// The device no longer reacts to its frontend (frontend gone, or closed
    /// while offline); it is forgotten when its backend directory goes.
    public var isRetired: Bool
    /// The last fatal error, as written to the `error` node.
    public var lastError: String?
}

/// Runs the xenbus handshake of one backend device: ``BackendLifecycle``
/// decides, this class reads the store, calls the driver and writes the
/// backend's nodes. Not thread-safe: one task owns it and feeds it events in
/// order (``BackendBus`` does; tests call it directly).
public final class BackendDevice<Driver: BackendDeviceDriver> {
    public let key: BackendDeviceKey
    /// `/local/domain/<backend>/backend/<type>/<domid>/<devid>`.
    public let backendPath: String
    /// Where `xenbus_dev_fatal` writes: `<home>/error/backend/<type>/<domid>/<devid>`.
    public let errorPath: String
    public private(set) var phase: BackendPhase = .initialising
    public private(set) var isRetired = false
    public private(set) var lastError: XenBusError?
    /// The frontend directory, once read from the backend's `frontend` node.
    public private(set) var frontendPath: String?

    private let driver: Driver
    private let store: any XenBusStore
    private let faultSink: @Sendable (BackendFault) -> Void
    private var context: BackendDeviceContext?
    private var connection: (live: Driver.Connection, context: BackendDeviceContext)?
    private var connectionCount: UInt64 = 0
    private var logger: Logger

    /// - Parameters:
    ///   - homePath: the backend domain's home, e.g. `/local/domain/0`.
    ///   - faultSink: where ``BackendDeviceContext/reportFault(_:)`` goes;
    ///     the owner must hand each fault back to ``handle(_:)`` in order
    ///     with the other events.
    public init(
        driver: Driver, store: any XenBusStore, homePath: String, key: BackendDeviceKey,
        faultSink: @escaping @Sendable (BackendFault) -> Void,
        logger: Logger = Logger(label: "xenbus")
    ) {
        self.driver = driver
        self.store = store
        self.key = key
        let relative = "backend/\(driver.deviceType)/\(key.frontendDomain)/\(key.deviceID)"
        self.backendPath = "\(homePath)/\(relative)"
        self.errorPath = "\(homePath)/error/\(relative)"
        self.faultSink = faultSink
        self.logger = logger
        self.logger[metadataKey: "device"] = "\(relative)"
    }

    public var status: BackendDeviceStatus {
        BackendDeviceStatus(
            key: key, phase: phase, isRetired: isRetired, lastError: lastError?.fatalText)
    }

    /// Whether a driver connection is live.
    public var isConnected: Bool { connection != nil }

    /// Adopts the device: reads the other end's details, then either
    /// starts the handshake (a device in Initialising: publish the
    /// features, InitWait, look at the frontend) or, for a device a
    /// previous backend process left in another state, takes up where it
    /// was (``BackendLifecycle/adopt(backend:frontend:trigger:frontendStatePath:)``):
    /// a Connected device with a live frontend resumes its data path.
    public func start() async {
        guard phase == .initialising, context == nil, !isRetired else { return }
        let frontendPath: String
        let left: BackendPhase
        do throws(XenBusError) {
            frontendPath = try await readOtherEnd()
            left = try await readOwnState()
        } catch {
            await fail(error)
            return
        }
        self.frontendPath = frontendPath
        context = BackendDeviceContext(
            store: store, deviceType: driver.deviceType, key: key, backendPath: backendPath,
            frontendPath: frontendPath, faultSink: faultSink)
        if left != .initialising {
            phase = left
            logger.info("adopting a device left in \(left)")
            await frontendChanged(adopting: true)
            return
        }
        await frontendChanged()
        if phase == .initWait {
            // Linux probes, then handles the frontend's current state.
            await frontendChanged()
        }
    }

    /// Re-reads the frontend's state and takes the step it calls for.
    public func frontendChanged() async {
        await frontendChanged(adopting: false)
    }

    /// The step for the frontend's state; `adopting`: the first step of a
    /// process taking over a device a predecessor left in `phase`.
    private func frontendChanged(adopting: Bool) async {
        guard !isRetired, let frontendPath else { return }
        let statePath = "\(frontendPath)/state"
        let observation: FrontendObservation
        do throws(XenBusError) {
            observation = FrontendObservation(storeValue: try await storeRead(store, statePath))
        } catch {
            await fail(error)
            return
        }
        let decide = adopting ? BackendLifecycle.adopt : BackendLifecycle.step
        let step = decide(phase, observation, driver.connectTrigger, statePath)
        logger.debug(
            "\(adopting ? "adoption: " : "")frontend \(observation), backend \(phase): \(step)")
        await perform(step)
    }

    /// A fault the data path reported: fatal if it comes from the live
    /// connection, ignored if that connection is already gone (a worker
    /// stopping during disconnect may still report).
    public func handle(_ fault: BackendFault) async {
        guard let connection, connection.context.connectionID == fault.connectionID else {
            logger.debug("ignoring fault of an old connection: \(fault.error)")
            return
        }
        await fail(fault.error)
    }

    /// `xenbus_dev_fatal`: disconnects, writes `"<errno> <text>"` to the
    /// `error` node and switches to Closing.
    public func fail(_ error: XenBusError) async {
        lastError = error
        logger.error("\(error.isGuestFault ? "guest fault" : "error"): \(error)")
        await disconnect()
        guard await backendExists() else {
            // Being removed: nothing to tell the frontend, but say where we are.
            phase = .closing
            return
        }
        do throws(XenBusError) {
            try await storeWrite(store, "\(errorPath)/error", error.fatalText)
        } catch {
            logger.error("cannot write error node: \(error)")
        }
        await switchState(.closing)
    }

    /// The backend directory was removed (toolstack unplugged the device or
    /// destroyed the domain): disconnect without writing anything, and drop
    /// the error node.
    public func remove() async {
        await disconnect()
        isRetired = true
        do throws(XenBusError) {
            try await storeRemove(store, errorPath)
        } catch {
            logger.warning("cannot remove error node: \(error)")
        }
    }

    /// The backend process is stopping: the driver suspends the
    /// connection (a successor process resumes it), the store is left
    /// alone.
    public func shutdown() async {
        if let (live, connectionContext) = connection {
            connection = nil
            await driver.suspend(connectionContext, live)
        }
        isRetired = true
    }

    // MARK: steps

    private func perform(_ step: LifecycleStep) async {
        switch step {
        case .stay:
            return
        case .offerInitWait:
            await disconnect()
            guard let context else { return }
            do {
                let features = try await driver.probe(context)
                try await publish(features)
            } catch {
                await fail(XenBusError(driverError: error))
                return
            }
            await switchState(.initWait)
        case .connect:
            await connect(resuming: false)
        case .resume:
            await connect(resuming: true)
        case .beginClosing:
            await switchState(.closing)
        case .close:
            await disconnect()
            await switchState(.closed)
            if !(await isOnline()) {
                logger.info("closed while offline: device retired")
                isRetired = true
            }
        case .vanish:
            logger.info("frontend vanished")
            await disconnect()
            if await backendExists() {
                await switchState(.closed)
            } else {
                phase = .closed
            }
            isRetired = true
        case .fail(let error):
            await fail(error)
        }
    }

    private func connect(resuming: Bool) async {
        guard let context else { return }
        // Enforce the precondition before acquiring anything new.
        await disconnect()
        connectionCount += 1
        let connectionContext = context.forConnection(connectionCount, resuming: resuming)
        let result: BackendConnectResult<Driver.Connection>
        do {
            result = try await driver.connect(connectionContext)
        } catch {
            await fail(XenBusError(driverError: error))
            return
        }
        connection = (result.connection, connectionContext)
        do throws(XenBusError) {
            try await publish(result.publish)
        } catch {
            await fail(error)
            return
        }
        await switchState(.connected)
        guard phase == .connected else { return }
        // An error node from an earlier cycle (or an earlier run of this
        // backend) would mislead the admin now that the device works.
        lastError = nil
        try? await storeRemove(store, errorPath)
        logger.info(resuming ? "resumed the connection of a previous backend" : "connected")
    }

    private func disconnect() async {
        guard let (live, connectionContext) = connection else { return }
        connection = nil
        await driver.disconnect(connectionContext, live)
    }

    private func publish(_ nodes: [BackendNode]) async throws(XenBusError) {
        for node in nodes {
            guard Self.isRelativeNodeName(node.name) else {
                throw .driver("driver published an invalid node name \(quoted(node.name))")
            }
            try await storeWrite(store, "\(backendPath)/\(node.name)", node.value)
        }
    }

    private func switchState(_ target: BackendPhase) async {
        do throws(XenBusError) {
            try await storeWrite(store, "\(backendPath)/state", target.xenbusState.storeValue)
            phase = target
        } catch {
            // Like xenbus_switch_state failing: nothing else to try.
            lastError = error
            logger.error("cannot switch to \(target): \(error)")
        }
    }

    // MARK: store reads

    private func readOtherEnd() async throws(XenBusError) -> String {
        let idPath = "\(backendPath)/frontend-id"
        guard let idText = try await storeRead(store, idPath) else {
            throw .backendNodeMissing(path: idPath)
        }
        guard let domain = DomainID(parsing: idText), domain == key.frontendDomain else {
            throw .backendNodeInvalid(
                path: idPath, value: idText, expected: "the domain ID \(key.frontendDomain)")
        }
        let pathPath = "\(backendPath)/frontend"
        guard let path = try await storeRead(store, pathPath) else {
            throw .backendNodeMissing(path: pathPath)
        }
        let prefix = "/local/domain/\(domain)/"
        guard path.hasPrefix(prefix), path.count > prefix.count, !path.hasSuffix("/"),
            !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
        else {
            throw .backendNodeInvalid(
                path: pathPath, value: path, expected: "a directory under \(prefix)")
        }
        guard try await storeRead(store, path) != nil else {
            throw .frontendMissing(path: path)
        }
        return path
    }

    /// The backend's own `state` as a previous process left it; a value
    /// no backend writes (0, 3, 7, 8, garbage) is treated as Initialising
    /// and the handshake starts over.
    private func readOwnState() async throws(XenBusError) -> BackendPhase {
        let text = try await storeRead(store, "\(backendPath)/state")
        switch text.flatMap(XenbusState.init(storeValue:)) {
        case .initWait: return .initWait
        case .connected: return .connected
        case .closing: return .closing
        case .closed: return .closed
        default: return .initialising
        }
    }

    private func backendExists() async -> Bool {
        (try? await storeRead(store, backendPath)) != nil
    }

    /// `xenbus_dev_is_online`: `online` reads as a non-zero number.
    private func isOnline() async -> Bool {
        guard let text = try? await storeRead(store, "\(backendPath)/online"),
            let value: UInt32 = parseDecimal(text)
        else { return false }
        return value != 0
    }

    static func isRelativeNodeName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("/") && !name.hasSuffix("/")
            && !name.split(separator: "/", omittingEmptySubsequences: false).contains {
                $0.isEmpty || $0 == "." || $0 == ".."
            }
    }
}

extension XenBusError {
    /// Wraps an error thrown by a driver.
    public init(driverError error: any Error) {
        if let own = error as? XenBusError {
            self = own
        } else {
            self = .driver(String(describing: error))
        }
    }

    /// The `error` node's text as `xenbus_dev_fatal` formats it.
    public var fatalText: String { "\(errnoValue) \(description)" }
}
