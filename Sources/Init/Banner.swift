import LinuxSystem

/// The one line that says boot is complete, and where its numbers come from.
public enum Banner {
    /// "proxenos ready in 12.34 s (Xen 4.17.7, Linux 6.1.0-56-amd64)".
    public static func readyLine(uptime: Double?, xen: String?, kernel: String) -> String {
        let seconds = uptime.map(twoDecimals) ?? "?"
        return "proxenos ready in \(seconds) s (Xen \(xen ?? "unknown"), Linux \(kernel))"
    }

    /// Seconds since the kernel started (/proc/uptime).
    public static func uptime() -> Double? {
        guard let text = Files.readIfPresent("/proc/uptime") else { return nil }
        return text.split(separator: " ").first.flatMap { Double(String($0)) }
    }

    /// The hypervisor's version from /sys/hypervisor/version.
    public static func xenVersion() -> String? {
        let base = "/sys/hypervisor/version/"
        guard let major = Files.readIfPresent(base + "major")?.trimmingSpaces(),
            let minor = Files.readIfPresent(base + "minor")?.trimmingSpaces()
        else { return nil }
        let extra = Files.readIfPresent(base + "extra")?.trimmingSpaces() ?? ""
        return "\(major).\(minor)\(extra)"
    }

    /// 12.3456 → "12.35" without Foundation's formatting.
    static func twoDecimals(_ value: Double) -> String {
        let hundredths = Int((max(0, value) * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
