import Init
import NetConf

/// PID 1's first step on poweroff, reboot or halt: `xm shutdown --all
/// --wait --host` asks xend to shut every guest down, destroy those left at
/// xend-config.sxp's guest-shutdown-timeout, and print what became of each
/// on the console.
enum HostShutdown {
    static let configPath = "/etc/xen/xend-config.sxp"
    /// Beyond the guests' deadline: xend's destroys and xm's start.
    static let margin: Int64 = 30

    static let step = InitProcess.ShutdownStep(name: "guest shutdown", needs: "xend") {
        plan(deadline: deadline(configPath))
    }

    static func plan(deadline: (seconds: Int64, note: String)) -> InitProcess.ShutdownStep.Plan {
        InitProcess.ShutdownStep.Plan(
            argv: [
                "/usr/sbin/xm", "shutdown", "--all", "--wait", "--host", "--timeout",
                "\(deadline.seconds)",
            ],
            timeout: .seconds(deadline.seconds + margin),
            announcement:
                "shutting the guests down (deadline \(deadline.seconds) s, \(deadline.note))")
    }

    /// The deadline in effect and where it came from; a file netconf would
    /// refuse does not stop the shutdown (the default applies).
    static func deadline(_ path: String) -> (seconds: Int64, note: String) {
        let fallback = XendConfig.defaultGuestShutdownTimeout
        do {
            guard let config = try XendConfig.load(path: path) else {
                return (fallback, "the default; no \(path)")
            }
            return (config.guestShutdownTimeout, "guest-shutdown-timeout in \(path)")
        } catch {
            return (fallback, "the default; \(path) is unreadable: \(error)")
        }
    }
}
