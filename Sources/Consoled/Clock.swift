#if canImport(Glibc)
    import Glibc
#endif

/// The clocks consoled reads: monotonic for rate limits and timers,
/// wall-clock for log timestamps. A protocol so tests can move time.
public protocol ConsoleClock: Sendable {
    /// Monotonic nanoseconds.
    func monotonic() -> UInt64
    /// Seconds since the epoch (UTC).
    func wallSeconds() -> Int
}

/// The system's clocks.
public struct SystemClock: ConsoleClock {
    public init() {}

    public func monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    public func wallSeconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int(now.tv_sec)
    }
}

/// `YYYY-MM-DD HH:MM:SS ` (UTC; dom0 has no time zone) for the start of a
/// log line.
func logTimestamp(_ seconds: Int) -> [UInt8] {
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
    let text =
        "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) "
    return Array(text.utf8)
}
