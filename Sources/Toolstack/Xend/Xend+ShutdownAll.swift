/// What became of one guest when every guest was asked to stop.
public struct GuestStopOutcome: Sendable, Equatable, CustomStringConvertible {
    public enum Result: Sendable, Equatable {
        /// Gone within the deadline, after this many seconds.
        case stopped(seconds: Double)
        /// Had stopped already (crashed and preserved, or powered off and
        /// not yet cleaned up): destroyed at once.
        case wasStopped
        /// Still there at the deadline: destroyed.
        case destroyed(deadline: Int)
        /// Could not be destroyed either: it may still run.
        case failed(String)
    }

    public var name: String
    public var domid: UInt32
    public var reboot: Bool
    public var result: Result

    public init(name: String, domid: UInt32, reboot: Bool = false, result: Result) {
        self.name = name
        self.domid = domid
        self.reboot = reboot
        self.result = result
    }

    /// Whether the guest went the way it was asked to.
    public var isClean: Bool {
        switch result {
        case .stopped, .wasStopped: return true
        case .destroyed, .failed: return false
        }
    }

    /// One console line, e.g. `demo (3): shut down in 4.2 s`.
    public var description: String {
        let label = "\(name) (\(domid))"
        switch result {
        case .stopped(let seconds):
            return "\(label): \(reboot ? "rebooted" : "shut down") in \(Xend.seconds(seconds)) s"
        case .wasStopped:
            return "\(label): had stopped already; destroyed"
        case .destroyed(let deadline):
            return "\(label): destroyed after the \(deadline) s deadline (no shutdown by then)"
        case .failed(let reason):
            return "\(label): could not be stopped: \(reason)"
        }
    }
}

extension Xend {
    /// Asks every guest at once to power off (or reboot), then waits until
    /// each is gone; whatever is left at the deadline is destroyed. With
    /// `host` (the appliance is going down, as xendomains' stop did) a
    /// guest that stops is destroyed whatever its on_* says, and no domain
    /// is created, restored or restarted from now on. Returns one outcome
    /// per guest, in domain id order.
    func shutdownAll(reboot: Bool, timeoutSeconds: Int, host: Bool) async -> [GuestStopOutcome] {
        if host { hostShuttingDown = true }
        let infos: [DomainInfo]
        do {
            infos = try hypervisor.listDomains()
        } catch {
            log.error("shutdown of all guests: cannot list domains: \(error)")
            return []
        }
        let started = monotonicSeconds()
        var outcomes: [UInt32: GuestStopOutcome] = [:]
        var pending: [UInt32: String] = [:]
        let request = reboot ? "reboot" : "poweroff"
        for info in infos where info.domid != 0 {
            let domid = info.domid
            let name = await label(domid)
            let stopped = info.isShutdown || domains[domid]?.phase == .preserved
            if stopped {
                // Nothing to ask; for the host's shutdown it goes now.
                if host {
                    outcomes[domid] = await destroyForHost(domid, name: name, result: .wasStopped)
                }
                continue
            }
            do {
                try await store.write("\(StorePaths.domain(domid))/control/shutdown", request)
            } catch {
                // Waited for all the same: the deadline destroys it.
                log.error("\(name) (\(domid)): cannot ask it to \(request): \(error)")
            }
            pending[domid] = name
        }
        log.info(
            "asked \(pending.count) guest(s) to \(reboot ? "reboot" : "shut down")\(host ? " for the host's shutdown" : ""); deadline \(timeoutSeconds) s"
        )
        let deadline = started + Double(timeoutSeconds)
        while !pending.isEmpty {
            for domid in pending.keys.sorted() {
                guard let name = pending[domid] else { continue }
                let info = try? hypervisor.domain(domid)
                if info == nil && domains[domid] == nil {
                    pending[domid] = nil
                    outcomes[domid] = GuestStopOutcome(
                        name: name, domid: domid, reboot: reboot,
                        result: .stopped(seconds: monotonicSeconds() - started))
                } else if host, let info, info.isShutdown, domains[domid] == nil {
                    // Not xend's (no on_* to apply): it powered off, and is
                    // cleaned up here.
                    pending[domid] = nil
                    outcomes[domid] = await destroyForHost(
                        domid, name: name,
                        result: .stopped(seconds: monotonicSeconds() - started), reboot: reboot)
                }
            }
            if pending.isEmpty || monotonicSeconds() >= deadline { break }
            try? await Task.sleep(for: settings.pollInterval)
        }
        for (domid, name) in pending.sorted(by: { $0.key < $1.key }) {
            outcomes[domid] = await destroyForHost(
                domid, name: name, result: .destroyed(deadline: timeoutSeconds), reboot: reboot,
                reason:
                    "destroyed: it did not \(reboot ? "reboot" : "shut down") within \(timeoutSeconds) s"
            )
        }
        for outcome in outcomes.values.sorted(by: { $0.domid < $1.domid }) {
            log.info("\(outcome)")
        }
        return outcomes.values.sorted { $0.domid < $1.domid }
    }

    /// The name a guest goes by in the outcomes.
    private func label(_ domid: UInt32) async -> String {
        if let name = domains[domid]?.spec.name { return name }
        return (try? await displayName(domid)) ?? "Domain-\(domid)"
    }

    /// Destroys a guest; `result` is its outcome unless that fails.
    private func destroyForHost(
        _ domid: UInt32, name: String, result: GuestStopOutcome.Result, reboot: Bool = false,
        reason: String = "destroyed for the host's shutdown"
    ) async -> GuestStopOutcome {
        do {
            try await destroy(domid, reason: reason)
            return GuestStopOutcome(name: name, domid: domid, reboot: reboot, result: result)
        } catch {
            return GuestStopOutcome(
                name: name, domid: domid, reboot: reboot, result: .failed("\(error)"))
        }
    }
}
