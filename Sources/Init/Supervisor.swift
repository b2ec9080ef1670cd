/// The supervision state of every dom0 service: which to start when, what a
/// child's exit means, and what to stop on shutdown. Pure: the caller spawns,
/// reaps and keeps time (a monotonic `Duration` since any fixed point), so
/// tests drive it without processes.
public struct Supervisor: Sendable {
    /// Where one service stands.
    public enum Phase: Sendable, Equatable {
        /// Never started; waits for the services before it to be ready.
        case pending
        /// To be (re)started at the given time.
        case scheduled(at: Duration)
        case running(pid: Int32, since: Duration)
        /// Repeated fast failures: no more restarts.
        case gaveUp
        /// Stopped for shutdown.
        case stopped
    }

    /// One service and its history.
    public struct Service: Sendable, Equatable {
        public let spec: ServiceSpec
        public internal(set) var phase: Phase = .pending
        public internal(set) var fastFailures = 0
        public internal(set) var starts = 0
        /// Whether the readiness wait already timed out (reported once).
        var readinessTimedOut = false
    }

    public private(set) var services: [Service]
    public let policy: BackoffPolicy
    /// How long the services after one with a `readyPath` wait for it.
    public let readinessTimeout: Duration
    public private(set) var isShuttingDown = false

    /// How often the caller should re-check readiness while a start waits
    /// for it.
    public static let readinessPollInterval: Duration = .milliseconds(50)

    public init(
        services: [ServiceSpec], policy: BackoffPolicy = BackoffPolicy(),
        readinessTimeout: Duration = .seconds(15)
    ) {
        self.services = services.map { Service(spec: $0) }
        self.policy = policy
        self.readinessTimeout = readinessTimeout
    }

    /// Adds a service after boot (the admin shell); it starts at the next
    /// `dueStarts` unless a service of that name exists.
    public mutating func add(_ spec: ServiceSpec) {
        guard service(named: spec.name) == nil, !isShuttingDown else { return }
        services.append(Service(spec: spec))
    }

    /// The service with this name.
    public func service(named name: String) -> Service? {
        services.first { $0.spec.name == name }
    }

    /// The name of the running service with this pid.
    public func serviceName(pid: Int32) -> String? {
        for service in services {
            if case .running(let running, _) = service.phase, running == pid {
                return service.spec.name
            }
        }
        return nil
    }

    /// Services to start now. A first start waits until every earlier
    /// service with a `readyPath` is ready (`isReady`), has given up, or has
    /// run longer than `readinessTimeout`; the notices say when a wait timed
    /// out. A service `mayStart` refuses (one that needs the kernel's random
    /// numbers before they are ready) is not started, and the first starts
    /// after it wait for it, so the table's order holds.
    public mutating func dueStarts(
        now: Duration, isReady: (ServiceSpec) -> Bool,
        mayStart: (ServiceSpec) -> Bool = { _ in true }
    ) -> (names: [String], notices: [String]) {
        guard !isShuttingDown else { return ([], []) }
        var names: [String] = []
        var notices: [String] = []
        var blocked = false
        for index in services.indices {
            let service = services[index]
            switch service.phase {
            case .pending:
                guard mayStart(service.spec) else {
                    blocked = true
                    continue
                }
                if !blocked { names.append(service.spec.name) }
            case .scheduled(let at):
                if at <= now, mayStart(service.spec) { names.append(service.spec.name) }
            case .running, .gaveUp, .stopped:
                break
            }
            // Does this service hold back the first starts after it?
            guard let path = service.spec.readyPath, !blocked else { continue }
            switch service.phase {
            case .gaveUp, .stopped:
                continue
            case .running(_, let since):
                if service.readinessTimedOut || isReady(service.spec) { continue }
                if now - since >= readinessTimeout {
                    services[index].readinessTimedOut = true
                    notices.append(
                        "\(service.spec.name) is not ready (\(path) missing) after "
                            + "\(format(readinessTimeout)); starting the services after it anyway"
                    )
                    continue
                }
                blocked = true
            case .pending, .scheduled:
                if service.readinessTimedOut { continue }
                blocked = true
            }
        }
        return (names, notices)
    }

    /// Records a successful spawn.
    public mutating func didStart(_ name: String, pid: Int32, now: Duration) {
        guard let index = services.firstIndex(where: { $0.spec.name == name }) else { return }
        services[index].phase = .running(pid: pid, since: now)
        services[index].starts += 1
    }

    /// Records a spawn that failed (for example a missing executable); it
    /// counts as a fast failure.
    public mutating func didFailToStart(_ name: String, error: String, now: Duration) -> [String] {
        guard let index = services.firstIndex(where: { $0.spec.name == name }) else { return [] }
        services[index].starts += 1
        return failed(
            index: index, runTime: .zero, what: "could not be started: \(error)", now: now)
    }

    /// Records the exit of a child. Returns nil when the pid is not a
    /// service (an orphan PID 1 reaped), else the notices for the console.
    public mutating func reap(pid: Int32, status: ExitStatus, now: Duration) -> [String]? {
        guard
            let index = services.firstIndex(where: {
                if case .running(let running, _) = $0.phase { return running == pid }
                return false
            }),
            case .running(_, let since) = services[index].phase
        else { return nil }
        if isShuttingDown {
            services[index].phase = .stopped
            return []
        }
        let runTime = now - since
        if !policy.isFastFailure(runTime: runTime) { services[index].fastFailures = 0 }
        var notices: [String] = []
        if let loss = services[index].spec.lossOnExit {
            notices.append(
                "service \(services[index].spec.name) \(status.description): \(loss.message)"
            )
        }
        return notices + failed(index: index, runTime: runTime, what: status.description, now: now)
    }

    private mutating func failed(index: Int, runTime: Duration, what: String, now: Duration)
        -> [String]
    {
        let name = services[index].spec.name
        if policy.isFastFailure(runTime: runTime) { services[index].fastFailures += 1 }
        let failures = services[index].fastFailures
        if services[index].spec.restart == .withBackoff
            && policy.shouldGiveUp(afterFastFailures: failures)
        {
            services[index].phase = .gaveUp
            return [
                "service \(name) \(what)",
                "service \(name) failed \(failures) times in a row within "
                    + "\(format(policy.stableAfter)) of starting; giving up on it",
            ]
        }
        let delay = policy.delay(afterFastFailures: failures)
        services[index].phase = .scheduled(at: now + delay)
        return ["service \(name) \(what); restarting in \(format(delay))"]
    }

    /// When the caller must look again even if no child exits: the earliest
    /// scheduled start, or soon if a first start waits for readiness.
    public func nextWakeup(
        now: Duration, isReady: (ServiceSpec) -> Bool,
        mayStart: (ServiceSpec) -> Bool = { _ in true }
    ) -> Duration? {
        guard !isShuttingDown else { return nil }
        var earliest: Duration?
        for service in services {
            if case .scheduled(let at) = service.phase {
                // A restart held back by `mayStart` is looked at again at
                // the poll interval, not in a busy loop.
                let when = mayStart(service.spec) ? at : max(at, now + Self.readinessPollInterval)
                earliest = min(earliest ?? when, when)
            }
        }
        if services.contains(where: { $0.phase == .pending }) {
            let poll = now + Self.readinessPollInterval
            earliest = min(earliest ?? poll, poll)
        }
        return earliest
    }

    /// Stops all restarts and returns the running services in reverse table
    /// order, each with its pid and spec (stop signal and timeout).
    public mutating func beginShutdown() -> [(name: String, pid: Int32, spec: ServiceSpec)] {
        isShuttingDown = true
        var running: [(name: String, pid: Int32, spec: ServiceSpec)] = []
        for index in services.indices.reversed() {
            switch services[index].phase {
            case .running(let pid, _):
                running.append((services[index].spec.name, pid, services[index].spec))
            default:
                services[index].phase = .stopped
            }
        }
        return running
    }
}

/// "0.25 s", "2 s": durations for console messages.
func format(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let hundredths = attoseconds / 10_000_000_000_000_000
    if hundredths == 0 { return "\(seconds) s" }
    let fraction = hundredths < 10 ? "0\(hundredths)" : "\(hundredths)"
    let trimmed = fraction.hasSuffix("0") ? String(fraction.dropLast()) : fraction
    return "\(seconds).\(trimmed) s"
}
