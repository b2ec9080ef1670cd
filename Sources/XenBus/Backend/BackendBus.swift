import Logging

/// Runs a ``BackendDevice`` for every device under
/// `<home>/backend/<type>/<domid>/<devid>`: scans at start, watches
/// `backend/<type>` for devices appearing and vanishing (mark and sweep) and
/// each adopted device's frontend `state` node.
///
/// A device is adopted when its backend `state` reads Initialising (1), as
/// Linux's xenbus probes only such nodes (the toolstack writes it last, or
/// in the same transaction as the rest of the directory), and also when it
/// reads InitWait, Connected, Closing or Closed: those a previous process
/// of this backend left behind, and this one takes them up where they were
/// (``BackendLifecycle/adopt(backend:frontend:trigger:frontendStatePath:)``).
/// Each device has its own task consuming its events in order, so a slow
/// connect delays only its own device.
public final class BackendBus<Driver: BackendDeviceDriver>: Sendable {
    public let driver: Driver
    public let store: any XenBusStore
    /// The backend domain's home, e.g. `/local/domain/0`.
    public let homePath: String
    /// `<home>/backend/<type>`.
    public let rootPath: String
    private let registry = DeviceRegistry()
    private let logger: Logger

    public init(
        store: any XenBusStore, driver: Driver, homePath: String = "/local/domain/0",
        logger: Logger = Logger(label: "xenbus")
    ) {
        self.store = store
        self.driver = driver
        self.homePath = homePath
        self.rootPath = "\(homePath)/backend/\(driver.deviceType)"
        var logger = logger
        logger[metadataKey: "backend"] = "\(driver.deviceType)"
        self.logger = logger
    }

    /// Serves devices until the task is cancelled or the store's watch ends
    /// (then rethrows its error). On the way out every device is
    /// disconnected without touching the store.
    public func run() async throws {
        let events: AsyncThrowingStream<String, any Error>
        do {
            events = try await store.watch(rootPath)
        } catch {
            throw XenBusError.store(
                operation: "watch", path: rootPath, reason: String(describing: error))
        }
        do {
            try await rescan()
            for try await path in events {
                try await changed(path)
            }
        } catch {
            await stopAll()
            throw error
        }
        await stopAll()
    }

    /// The devices currently known, in key order.
    public func status() async -> [BackendDeviceStatus] {
        await registry.statuses()
    }

    // MARK: mark and sweep

    /// Compares the store with the registry: adopts new devices, removes
    /// devices whose directory is gone.
    func rescan() async throws(XenBusError) {
        var present: Set<BackendDeviceKey> = []
        for domainName in try await storeDirectory(store, rootPath) {
            guard let domain = DomainID(parsing: domainName) else {
                logger.debug("ignoring \(rootPath)/\(quoted(domainName))")
                continue
            }
            let domainPath = "\(rootPath)/\(domainName)"
            for deviceName in try await storeDirectory(store, domainPath) {
                guard let deviceID: UInt32 = parseDecimal(deviceName) else {
                    logger.debug("ignoring \(domainPath)/\(quoted(deviceName))")
                    continue
                }
                let key = BackendDeviceKey(frontendDomain: domain, deviceID: deviceID)
                present.insert(key)
                if await !registry.contains(key) {
                    try await consider(key)
                }
            }
        }
        for key in await registry.keys() where !present.contains(key) {
            await removeDevice(key)
        }
    }

    /// Reacts to one watch event under the root.
    func changed(_ path: String) async throws(XenBusError) {
        guard path == rootPath || path.hasPrefix(rootPath + "/") else { return }
        let components = path.dropFirst(rootPath.count).split(separator: "/")
        guard components.count >= 2 else {
            // The root or a whole domain directory changed: sweep everything.
            try await rescan()
            return
        }
        guard let domain = DomainID(parsing: String(components[0])),
            let deviceID: UInt32 = parseDecimal(String(components[1]))
        else { return }
        let key = BackendDeviceKey(frontendDomain: domain, deviceID: deviceID)
        let devicePath = "\(rootPath)/\(components[0])/\(components[1])"
        if await registry.contains(key) {
            // Deeper changes of a known device are its own writes; only the
            // directory itself going away matters here.
            if components.count == 2, try await storeRead(store, devicePath) == nil {
                await removeDevice(key)
            }
        } else if try await storeRead(store, devicePath) != nil {
            try await consider(key)
        }
    }

    private func consider(_ key: BackendDeviceKey) async throws(XenBusError) {
        let statePath = "\(rootPath)/\(key.frontendDomain)/\(key.deviceID)/state"
        guard let text = try await storeRead(store, statePath),
            let state = XenbusState(storeValue: text), Self.adoptable.contains(state)
        else { return }
        await adopt(key)
    }

    /// Backend states a device is adopted in: Initialising (new) and what
    /// a previous process of this backend leaves.
    static var adoptable: Set<XenbusState> {
        [.initialising, .initWait, .connected, .closing, .closed]
    }

    private func adopt(_ key: BackendDeviceKey) async {
        logger.info("adopting device \(key)")
        let (events, continuation) = AsyncStream<DeviceEvent>.makeStream()
        let task = Task { [driver, store, homePath, registry, logger] in
            await Self.serve(
                key: key, events: events, continuation: continuation, driver: driver,
                store: store, homePath: homePath, registry: registry, logger: logger)
        }
        let initial = BackendDeviceStatus(
            key: key, phase: .initialising, isRetired: false, lastError: nil)
        await registry.insert(key, continuation: continuation, task: task, status: initial)
        // Only now may the device report status: its entry exists.
        continuation.yield(.start)
    }

    private func removeDevice(_ key: BackendDeviceKey) async {
        guard let entry = await registry.take(key) else { return }
        logger.info("device \(key) removed")
        entry.continuation.yield(.remove)
        entry.continuation.finish()
        await entry.task.value
    }

    private func stopAll() async {
        for key in await registry.keys() {
            guard let entry = await registry.take(key) else { continue }
            entry.continuation.yield(.shutdown)
            entry.continuation.finish()
            await entry.task.value
        }
    }

    /// The body of one device's task.
    private static func serve(
        key: BackendDeviceKey, events: AsyncStream<DeviceEvent>,
        continuation: AsyncStream<DeviceEvent>.Continuation, driver: Driver,
        store: any XenBusStore, homePath: String, registry: DeviceRegistry, logger: Logger
    ) async {
        let device = BackendDevice(
            driver: driver, store: store, homePath: homePath, key: key,
            faultSink: { continuation.yield(.fault($0)) }, logger: logger)
        var watcher: Task<Void, Never>? = nil
        loop: for await event in events {
            switch event {
            case .start:
                await device.start()
                if let frontendPath = device.frontendPath, watcher == nil {
                    watcher = watchFrontend(
                        "\(frontendPath)/state", store: store, continuation: continuation,
                        logger: logger)
                }
            case .frontendChanged:
                await device.frontendChanged()
            case .fault(let fault):
                await device.handle(fault)
            case .remove:
                await device.remove()
                break loop
            case .shutdown:
                await device.shutdown()
                break loop
            }
            await registry.update(device.status)
        }
        watcher?.cancel()
        await watcher?.value
    }

    /// Forwards every change of a frontend's state node into the device's
    /// event stream. A watch that ends (the store connection hiccuped) is
    /// registered again, with a growing pause, and the device looks at the
    /// frontend once more, so no change is missed while it was away; only
    /// cancellation (the device's task ending) stops it.
    private static func watchFrontend(
        _ statePath: String, store: any XenBusStore,
        continuation: AsyncStream<DeviceEvent>.Continuation, logger: Logger
    ) -> Task<Void, Never> {
        Task {
            var pause = Duration.milliseconds(50)
            while !Task.isCancelled {
                do {
                    for try await _ in try await store.watch(statePath) {
                        continuation.yield(.frontendChanged)
                        pause = .milliseconds(50)
                    }
                    if Task.isCancelled { return }
                    logger.warning("watch on \(statePath) ended; watching again")
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("watch on \(statePath) ended: \(error); watching again")
                }
                try? await Task.sleep(for: pause)
                // Whatever changed while no watch was registered.
                continuation.yield(.frontendChanged)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }
}

/// Events of one device, consumed in order by its task.
enum DeviceEvent: Sendable {
    case start
    case frontendChanged
    case fault(BackendFault)
    case remove
    case shutdown
}

/// The bus's table of devices.
actor DeviceRegistry {
    struct Entry {
        var continuation: AsyncStream<DeviceEvent>.Continuation
        var task: Task<Void, Never>
        var status: BackendDeviceStatus
    }

    private var entries: [BackendDeviceKey: Entry] = [:]

    func contains(_ key: BackendDeviceKey) -> Bool { entries[key] != nil }

    func keys() -> [BackendDeviceKey] { entries.keys.sorted() }

    func insert(
        _ key: BackendDeviceKey, continuation: AsyncStream<DeviceEvent>.Continuation,
        task: Task<Void, Never>, status: BackendDeviceStatus
    ) {
        entries[key] = Entry(continuation: continuation, task: task, status: status)
    }

    func take(_ key: BackendDeviceKey) -> Entry? {
        entries.removeValue(forKey: key)
    }

    func update(_ status: BackendDeviceStatus) {
        entries[status.key]?.status = status
    }

    func statuses() -> [BackendDeviceStatus] {
        entries.values.map(\.status).sorted { $0.key < $1.key }
    }
}
