/// A token bucket over bytes: a guest may write `burst` bytes at once and
/// `rate` bytes per second on average. consoled reads a guest's ring only
/// while its bucket holds tokens, so a guest flooding its console costs
/// dom0 a bounded share, however fast it writes (xenconsoled instead
/// counts events: 30 per 200 ms, whatever each carries).
public struct RateLimiter: Sendable {
    /// Bytes per second on average.
    public let rate: Int
    /// The most bytes taken at once after a quiet spell.
    public let burst: Int
    private var tokens: Int
    private var last: UInt64

    /// A full bucket at time `now` (monotonic nanoseconds).
    public init(rate: Int, burst: Int, now: UInt64) {
        self.rate = max(1, rate)
        self.burst = max(1, burst)
        tokens = self.burst
        last = now
    }

    /// The bytes that may be taken now.
    public mutating func allowance(now: UInt64) -> Int {
        refill(now)
        return tokens
    }

    /// Records `bytes` taken.
    public mutating func consume(_ bytes: Int) {
        tokens = max(0, tokens - bytes)
    }

    /// Nanoseconds until `bytes` (at most the burst) may be taken.
    public mutating func delay(until bytes: Int, now: UInt64) -> UInt64 {
        refill(now)
        let missing = min(bytes, burst) - tokens
        guard missing > 0 else { return 0 }
        return (UInt64(missing) * 1_000_000_000 + UInt64(rate) - 1) / UInt64(rate)
    }

    private mutating func refill(_ now: UInt64) {
        guard now > last else { return }
        let elapsed = now - last
        // Whole tokens only; the remainder of the interval is kept by
        // advancing `last` by exactly the time those tokens took.
        let earned =
            elapsed / 1_000_000_000 * UInt64(rate)
            + (elapsed % 1_000_000_000) * UInt64(rate) / 1_000_000_000
        guard earned > 0 else { return }
        if tokens + Int(min(earned, UInt64(burst))) >= burst {
            tokens = burst
            last = now
        } else {
            tokens += Int(earned)
            last += earned * 1_000_000_000 / UInt64(rate)
        }
    }
}
