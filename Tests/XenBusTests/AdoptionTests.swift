import Testing
import XenBus
import XenBusTesting

/// A backend process that starts while its devices are in some state
/// (its predecessor left them there) takes each up where it was.
@Suite("adoption: a restarted backend takes up every device state")
struct AdoptionTests {
    /// What the new process does, for the state its predecessor left
    /// (rows) and the frontend's state (columns).
    struct Case: Sendable, CustomStringConvertible {
        var left: String
        var frontend: String
        var expected: String
        var call: String?

        var description: String { "backend \(left), frontend \(frontend)" }
    }

    static let frontendStates = ["0", "1", "2", "3", "4", "5", "6", "x"]
    static let table: [String: [String]] = [
        // frontend:  0    1    2    3    4    5    6    x
        "2": ["6", "2", "2", "4", "4", "5", "6", "5"],
        "4": ["6", "2", "2", "4", "4", "5", "6", "5"],
        "5": ["6", "5", "5", "5", "5", "5", "6", "5"],
        "6": ["6", "2", "2", "5", "5", "6", "6", "5"],
    ]
    static let calls: [String: [String?]] = [
        "2": [nil, nil, nil, "connect", "connect", nil, nil, nil],
        "4": [nil, "probe", "probe", "resume", "resume", nil, nil, nil],
        "5": [nil, nil, nil, nil, nil, nil, nil, nil],
        "6": [nil, "probe", "probe", nil, nil, nil, nil, nil],
    ]

    static var cases: [Case] {
        table.keys.sorted().flatMap { left in
            frontendStates.indices.map { column in
                Case(
                    left: left, frontend: frontendStates[column],
                    expected: table[left]![column], call: calls[left]![column])
            }
        }
    }

    @Test("the first step for every pair of states", arguments: cases)
    func adopt(_ example: Case) async throws {
        let store = InMemoryXenBusStore()
        let grants = FakeGrantTable()
        let events = FakeEventChannelHub()
        let driver = try RecordingDriver(grants: grants, events: events)
        let device = FakeDeviceLayout(frontendDomain: DomainID(1), deviceID: 51712)
        device.create(in: store, backendNodes: ["params": "a"])
        let guest = try FakeFrontend(layout: device, store: store, grants: grants, events: events)
        try guest.publishRing()
        store.set("\(device.frontendPath)/state", example.frontend)
        store.set("\(device.backendPath)/state", example.left)

        let bus = BackendBus(store: store, driver: driver)
        let running = Task { try await bus.run() }
        let settled = await eventually {
            guard let status = await bus.status().first else { return false }
            let state = store.value("\(device.backendPath)/state")
            return state == example.expected
                && status.phase.xenbusState.storeValue == example.expected
        }
        // A step that changes nothing must not change it a moment later either.
        try await Task.sleep(for: .milliseconds(30))
        #expect(settled, "\(example): state \(store.value("\(device.backendPath)/state") ?? "-")")
        #expect(store.value("\(device.backendPath)/state") == example.expected)
        let calls = driver.calls
        if let call = example.call {
            #expect(calls.contains(call), "\(example): calls \(calls)")
        }
        #expect(!calls.contains("connect") || example.call == "connect", "\(example): \(calls)")
        #expect(!calls.contains("resume") || example.call == "resume", "\(example): \(calls)")
        if example.call == "resume" {
            #expect(grants.liveMappings == 1)
            #expect(!calls.contains("probe"), "a resumed device publishes no new features")
        }
        if example.frontend == "x" {
            #expect(store.value(device.errorNode)?.contains("not a xenbus state") == true)
        }
        running.cancel()
        try await running.value
    }

    @Test("adopt resumes only live Connected pairs; the rest is Linux's table")
    func pureTable() {
        let path = "/local/domain/1/device/vbd/1/state"
        for frontend: XenbusState in [.initialised, .connected] {
            #expect(
                BackendLifecycle.adopt(
                    backend: .connected, frontend: .state(frontend),
                    trigger: .initialisedOrConnected, frontendStatePath: path) == .resume)
            #expect(
                BackendLifecycle.adopt(
                    backend: .closing, frontend: .state(frontend),
                    trigger: .initialisedOrConnected, frontendStatePath: path) == .stay)
        }
        for backend: BackendPhase in [.initWait, .closed] {
            for frontend in XenbusState.allCases {
                #expect(
                    BackendLifecycle.adopt(
                        backend: backend, frontend: .state(frontend),
                        trigger: .connected, frontendStatePath: path)
                        == BackendLifecycle.step(
                            backend: backend, frontend: .state(frontend), trigger: .connected,
                            frontendStatePath: path))
            }
        }
    }
}
