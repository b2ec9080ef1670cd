/// When to respawn a service that exited, and when to stop trying.
///
/// A run shorter than `stableAfter` is a fast failure. Consecutive fast
/// failures double the delay from `initialDelay` up to `maximumDelay`; after
/// `giveUpAfter` of them the service is given up (unless it restarts forever).
/// A run of at least `stableAfter` forgets earlier failures.
public struct BackoffPolicy: Sendable, Equatable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var stableAfter: Duration
    public var giveUpAfter: Int

    public init(
        initialDelay: Duration = .milliseconds(250), maximumDelay: Duration = .seconds(30),
        stableAfter: Duration = .seconds(10), giveUpAfter: Int = 5
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.stableAfter = stableAfter
        self.giveUpAfter = max(1, giveUpAfter)
    }

    /// Whether a run that lasted `runTime` counts as a fast failure.
    public func isFastFailure(runTime: Duration) -> Bool { runTime < stableAfter }

    /// The delay before the next start after `fastFailures` consecutive fast
    /// failures (0 means the last run was stable).
    public func delay(afterFastFailures fastFailures: Int) -> Duration {
        var delay = initialDelay
        var remaining = max(0, fastFailures - 1)
        while remaining > 0 && delay < maximumDelay {
            delay = delay * 2
            remaining -= 1
        }
        return min(delay, maximumDelay)
    }

    /// Whether to give up after this many consecutive fast failures.
    public func shouldGiveUp(afterFastFailures fastFailures: Int) -> Bool {
        fastFailures >= giveUpAfter
    }
}
