import Configuration
import TributaryRuntime

/// The forwarder daemon's own settings.
///
/// ## Configuration keys
/// - `forwarder.sinks.refreshSeconds` (double, default 2, 0.1…300): how often sinks are read from
///   `forwarder.sinks`; added, changed, disabled and removed sinks take effect within this time.
/// - `forwarder.idlePollMaxMs` (int, default 250, 10…5000): an idle sink's queue is polled at most this far
///   apart (the pause starts at 10 ms and doubles while the queue stays empty).
/// - `forwarder.retry.baseSeconds` (double, default 1, 0.01…3600): the first retry's delay; it doubles per
///   attempt, with full jitter.
/// - `forwarder.retry.maxDelaySeconds` (double, default 600, 0.1…86400): the longest delay between attempts.
/// - `forwarder.retry.maxAttempts` (int, default 20, 1…100000) and `forwarder.retry.maxAgeHours` (double,
///   default 72, 0…8760): events are dead-lettered only when both are reached.
/// - `forwarder.retry.pollSeconds` (double, default 1, 0.05…60): how often due retries are looked for.
/// - `forwarder.retry.claimLimit` (int, default 20, 1…1000): retry rows taken per poll and sink.
/// - `forwarder.breaker.failures` (int, default 5, 1…1000): consecutive failed requests that open a sink's
///   circuit breaker (the sink is paused, then probed with one request).
/// - `forwarder.breaker.openSeconds` (double, default 5, 0.1…3600): the first pause; it doubles after each
///   failed probe, up to `forwarder.breaker.maxOpenSeconds` (double, default 300).
/// - `forwarder.deliveries.retentionDays` (int, default 30, 1…3650): how long delivered marks are kept
///   (a redelivery older than this is sent again, with the same idempotency key).
/// - `forwarder.attempts.retentionDays` (int, default 14, 1…3650): how long the attempt log is kept.
/// - `forwarder.deadLetters.retentionDays` (int, default 90, 1…3650): dead letters older than this are purged.
/// - `forwarder.maxResponseBytes` (int, default 65536, 1024…16777216): the largest sink response read;
///   the first 2 KB are kept with a failure.
/// - `forwarder.dnsCacheSeconds` (double, default 30, 0…3600): how long a sink host's checked addresses are reused.
struct ForwarderConfiguration: Sendable {
    var sinksRefreshSeconds: Double
    var idlePollMaxMs: Int
    var retry: RetryPolicy
    var retryPollSeconds: Double
    var retryClaimLimit: Int
    var breakerFailures: Int
    var breakerOpenSeconds: Double
    var breakerMaxOpenSeconds: Double
    var deliveriesRetentionDays: Int
    var attemptsRetentionDays: Int
    var deadLettersRetentionDays: Int
    var maxResponseBytes: Int
    var dnsCacheSeconds: Double

    init(reader: ConfigReader) throws {
        sinksRefreshSeconds = try reader.double(forKey: "forwarder.sinks.refreshSeconds", default: 2, in: 0.1...300)
        idlePollMaxMs = try reader.int(forKey: "forwarder.idlePollMaxMs", default: 250, in: 10...5000)
        retry = RetryPolicy(
            baseSeconds: try reader.double(forKey: "forwarder.retry.baseSeconds", default: 1, in: 0.01...3600),
            maxDelaySeconds: try reader.double(forKey: "forwarder.retry.maxDelaySeconds", default: 600, in: 0.1...86_400),
            maxAttempts: try reader.int(forKey: "forwarder.retry.maxAttempts", default: 20, in: 1...100_000),
            maxAgeSeconds: try reader.double(forKey: "forwarder.retry.maxAgeHours", default: 72, in: 0...8760) * 3600)
        retryPollSeconds = try reader.double(forKey: "forwarder.retry.pollSeconds", default: 1, in: 0.05...60)
        retryClaimLimit = try reader.int(forKey: "forwarder.retry.claimLimit", default: 20, in: 1...1000)
        breakerFailures = try reader.int(forKey: "forwarder.breaker.failures", default: 5, in: 1...1000)
        breakerOpenSeconds = try reader.double(forKey: "forwarder.breaker.openSeconds", default: 5, in: 0.1...3600)
        breakerMaxOpenSeconds = try reader.double(forKey: "forwarder.breaker.maxOpenSeconds", default: 300, in: 0.1...86_400)
        deliveriesRetentionDays = try reader.int(forKey: "forwarder.deliveries.retentionDays", default: 30, in: 1...3650)
        attemptsRetentionDays = try reader.int(forKey: "forwarder.attempts.retentionDays", default: 14, in: 1...3650)
        deadLettersRetentionDays = try reader.int(forKey: "forwarder.deadLetters.retentionDays", default: 90, in: 1...3650)
        maxResponseBytes = try reader.int(forKey: "forwarder.maxResponseBytes", default: 65_536, in: 1024...16_777_216)
        dnsCacheSeconds = try reader.double(forKey: "forwarder.dnsCacheSeconds", default: 30, in: 0...3600)
    }
}

/// When a failed delivery is tried again, and when it is given up on.
struct RetryPolicy: Sendable {
    var baseSeconds: Double
    var maxDelaySeconds: Double
    var maxAttempts: Int
    var maxAgeSeconds: Double

    /// The delay before attempt `attempts + 1`: exponential with full jitter, at least
    /// the sink's Retry-After.
    func delay(afterAttempts attempts: Int, retryAfter: Double?) -> Double {
        let ceiling = min(maxDelaySeconds, baseSeconds * pow2(min(attempts - 1, 40)))
        let jittered = Double.random(in: (ceiling / 2)...max(ceiling, ceiling / 2 + 0.001))
        return max(jittered, retryAfter ?? 0)
    }

    /// Whether events that failed `attempts` times, first `ageSeconds` ago, are given up on.
    func isExhausted(attempts: Int, ageSeconds: Double) -> Bool {
        attempts >= maxAttempts && ageSeconds >= maxAgeSeconds
    }

    private func pow2(_ n: Int) -> Double { Double(1 << max(n, 0)) }
}
