import LinuxSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The one line that says boot is complete, and where its numbers come from.
public enum Banner {
    /// "proxenos ready in 12.34 s, init 1.23 s (Xen 4.17.7, Linux 6.1.0-56-amd64)":
    /// dom0's uptime, and the time since the kernel ran /init (PID 1's own
    /// exec included) when known.
    public static func readyLine(
        uptime: Double?, initSeconds: Double? = nil, xen: String?, kernel: String
    ) -> String {
        let seconds = uptime.map(twoDecimals) ?? "?"
        let initPart = initSeconds.map { ", init \(twoDecimals($0)) s" } ?? ""
        return
            "proxenos ready in \(seconds) s\(initPart) (Xen \(xen ?? "unknown"), Linux \(kernel))"
    }

    /// The kernel's timestamp (seconds after boot) of the /dev/kmsg record
    /// `record` ("6,339,4102213,-;Run /init as init process") when its text
    /// is `text`.
    public static func kmsgSeconds(record: String, text: String) -> Double? {
        guard let semicolon = record.firstIndex(of: ";"),
            record[record.index(after: semicolon)...].hasPrefix(text)
        else { return nil }
        let fields = record[..<semicolon].split(separator: ",")
        guard fields.count >= 3, let micros = UInt64(fields[2]) else { return nil }
        return Double(micros) / 1e6
    }

    /// When the kernel exec'd /init (its "Run /init as init process"
    /// record), so PID 1's time counts its own exec and runtime start;
    /// nil when the record is gone.
    public static func initExecSeconds() -> Double? {
        let descriptor = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        // One record per read; EAGAIN once every record was read.
        for _ in 0..<10_000 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EPIPE { continue }  // overwritten records
            if count <= 0 { return nil }
            let record = String(decoding: buffer[0..<count], as: UTF8.self)
            if let seconds = kmsgSeconds(record: record, text: "Run /init as init process") {
                return seconds
            }
        }
        return nil
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
