import Synchronization

/// A token bucket per site: `rate` requests per second on average, up to `burst` at once.
/// Per process: with N collectors a site may send up to N times the rate.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let burst: Double
    private let buckets = Mutex<[Int64: Bucket]>([:])

    init(burst: Int) {
        self.burst = Double(burst)
    }

    /// Takes a token for `site`; returns `nil` if allowed, else the seconds until one is free.
    func acquire(site: Int64, rate: Double, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[site] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double((now - bucket.updated).components.seconds)
                + Double((now - bucket.updated).components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
            bucket.updated = now
            defer { buckets[site] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        }
    }
}
