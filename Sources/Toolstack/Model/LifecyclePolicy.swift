import DomainConfig

/// What xend does with a domain that stopped.
public enum LifecycleDecision: Sendable, Equatable {
    /// Nothing: xend itself stopped it (save in progress) or the state is
    /// not final yet.
    case ignore
    /// Destroy it and clean its nodes up.
    case destroy
    /// Destroy it and create it again from the same config.
    case restart
    /// Keep it (listed with `s` or `c`) until `xm destroy`.
    case preserve
    /// Keep it under a new name and start a fresh one under the old name.
    case renameRestart
    /// The config asked for a restart, but the domain stopped again too
    /// soon after the last start: destroy it instead, to avoid a loop.
    case refuseRestart(uptimeSeconds: Int)
}

/// xend's on_poweroff / on_reboot / on_crash table.
public enum LifecyclePolicy {
    /// The default restart-loop guard: a domain that stops this soon after
    /// starting is not restarted again. xend 3.0 (the seed talk's, 2006)
    /// used 20 s as its MINIMUM_RESTART_TIME; Xen 3.3's xend raised it to
    /// 60 s. We keep 20: a guest that crashes within 20 s of its start is
    /// caught either way, and a slow boot under TCG already takes about
    /// 20 s. xend-config.sxp's `(minimum-restart-time S)` overrides it.
    public static let minimumRestartSeconds = 20

    /// The config entry that applies to a shutdown reason. A watchdog
    /// firing counts as a crash, a soft reset as a reboot, an unknown code
    /// as a crash; suspend is xend's own doing (save) and has none.
    public static func action(for reason: ShutdownReason?, in spec: DomainSpec) -> ShutdownAction? {
        switch reason {
        case .poweroff: return spec.onPoweroff
        case .reboot, .softReset: return spec.onReboot
        case .crash, .watchdog, nil: return spec.onCrash
        case .suspend: return nil
        }
    }

    /// The decision for a domain that Xen reports as shut down.
    ///
    /// - Parameters:
    ///   - reason: the guest's shutdown code.
    ///   - spec: the domain's config.
    ///   - uptimeSeconds: time since xend last (re)started the domain.
    ///   - saving: xend is saving this domain right now.
    ///   - minimumRestartSeconds: the restart-loop guard.
    public static func decide(
        reason: ShutdownReason?, spec: DomainSpec, uptimeSeconds: Int, saving: Bool,
        minimumRestartSeconds: Int = minimumRestartSeconds
    ) -> LifecycleDecision {
        if saving { return .ignore }
        guard let action = action(for: reason, in: spec) else {
            // A suspend nobody asked for (the guest did it itself) is left
            // alone: `xm destroy` or a resume elsewhere decides.
            return .ignore
        }
        switch action {
        case .destroy:
            return .destroy
        case .preserve:
            return .preserve
        case .restart, .renameRestart:
            if uptimeSeconds < minimumRestartSeconds {
                return .refuseRestart(uptimeSeconds: uptimeSeconds)
            }
            return action == .restart ? .restart : .renameRestart
        }
    }
}
