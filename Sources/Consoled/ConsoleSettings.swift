/// consoled's knobs, with the appliance's defaults.
public struct ConsoledSettings: Sendable {
    /// Where clients attach (root only: mode 0600 in a 0700 directory).
    public var socketPath = "/run/consoled/consoled.sock"
    /// Where guest logs (`guest-NAME.log`) and `hypervisor.log` go: the
    /// bounded console log file system.
    public var logDirectory = "/var/log/xen/console"
    /// A log file's size before it is rotated.
    public var logMaximumBytes = 1 << 20
    /// Rotated files kept (`.1` ... `.N`).
    public var logKeep = 2
    /// Bytes per second a guest's console may produce on average ...
    public var rateBytesPerSecond = 32 * 1024
    /// ... and at once after a quiet spell.
    public var burstBytes = 64 * 1024
    /// Bytes of each guest's output kept for replay.
    public var historyBytes = 64 * 1024
    /// Lines replayed on attach unless the client asks otherwise.
    public var replayLines = 20
    /// Output queued for one client before its oldest is dropped.
    public var clientBufferBytes = 256 * 1024
    /// Input queued for a guest (the writer's socket is not read while it
    /// is full).
    public var inputBufferBytes = 16 * 1024
    /// Connections at once, attached or not (more are refused).
    public var maximumClients = 64
    /// Seconds between looks at the hypervisor's console ring.
    public var hypervisorPollSeconds = 1.0
    /// Seconds between two reports of the same guest's ring faults or log
    /// failures.
    public var reportIntervalSeconds = 30.0

    public init() {}
}
