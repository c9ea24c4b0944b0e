import Configuration
import TributaryRuntime

/// The collector's own settings.
///
/// ## Configuration keys
/// - `collector.listen.host` (string, default `127.0.0.1`), `collector.listen.port` (int, default 8080).
/// - `collector.limits.maxRequestBytes` (int, default 512000): a request body, after gzip decoding.
/// - `collector.limits.maxEventBytes` (int, default 32768): one event.
/// - `collector.limits.maxEventsPerBatch` (int, default 2500).
/// - `collector.limits.maxDepth` (int, default 64): JSON nesting.
/// - `collector.rateLimit.requestsPerSecond` (double, default 500): per site, unless the site sets its own.
/// - `collector.rateLimit.burst` (int, default 1000): requests a site may send at once.
/// - `collector.trustedProxies` (string array, default empty): CIDRs whose `X-Forwarded-For` is honoured.
/// - `collector.backpressure.maxQueueDepth` (int, default 100000): raw batches waiting for hydration above which requests get 503.
/// - `collector.retryAfterSeconds` (int, default 5): the `Retry-After` of 503 answers.
/// - `collector.spool.directory` (string, default `/var/lib/tributary/collector-spool`).
/// - `collector.spool.maxBytes` (int, default 1073741824): above this, 503 while PostgreSQL is down.
/// - `collector.groupCommit.maxBatches` (int, default 500): batches in one COPY and COMMIT.
/// - `collector.sites.refreshSeconds` (double, default 2): how soon site and key changes take effect.
/// - `collector.outbox.scanSeconds` (double, default 5), `collector.outbox.graceSeconds` (double, default 10):
///   how often, and after how long, saved-but-not-enqueued batches are enqueued again.
/// - `collector.outbox.bufferLimit` (int, default 10000): batches waiting in memory for Redis.
/// - `collector.partitions.daysAhead` (int, default 7): daily partitions created ahead of time.
/// - `collector.partitions.retentionDays` (int, default 430, 7…36500): raw batches received longer ago are dropped
///   (whole days; a day whose batches still wait in the outbox is kept until they are enqueued). Replay reaches
///   back this far; the default outlasts hydration's 60 weeks of events.
/// - `collector.partitions.lockTimeoutMs` (int, default 2000, 10…60000): how long a drop waits for the table's lock
///   (writers queue behind it meanwhile); a day not locked in time is left for the next hourly pass.
/// - `collector.tracker.batchSize` (int, default 100, 1…2500): events the browser tracker sends at most per request.
/// - `collector.tracker.flushIntervalMs` (int, default 500, 50…60000): how long it gathers events before sending.
/// - `collector.tracker.maxStoredEvents` (int, default 1000, 10…10000): unsent events it keeps (in memory and
///   localStorage); beyond this the oldest are dropped.
/// - `collector.tracker.retryMaxMs` (int, default 15000, 1000…600000): the longest backoff between retries
///   (a `Retry-After` from the collector is honoured as given).
/// - `collector.tracker.scriptCacheSeconds` (int, default 86400, 0…31536000): `Cache-Control` max-age of `/tributary.js`.
/// - `collector.tracker.settingsCacheSeconds` (int, default 300, 0…86400): `Cache-Control` max-age of `/v1/settings`.
/// - `collector.instance` (int, 0…1023, optional): this instance's number in batch ids; by default
///   taken from a Redis counter at start-up (or the pid if Redis is down).
struct CollectorConfiguration: Sendable {
    var host: String
    var port: Int
    var limits: IngestLimits
    var maxRequestBytes: Int
    var rateLimitPerSecond: Double
    var rateLimitBurst: Int
    var trustedProxies: [String]
    var maxQueueDepth: Int
    var retryAfterSeconds: Int
    var spoolDirectory: String
    var spoolMaxBytes: Int
    var groupCommitMaxBatches: Int
    var sitesRefreshSeconds: Double
    var outboxScanSeconds: Double
    var outboxGraceSeconds: Double
    var outboxBufferLimit: Int
    var partitionDaysAhead: Int
    var partitionRetentionDays: Int
    var partitionLockTimeoutMs: Int
    var tracker: TrackerConfiguration
    var instance: Int?

    init(reader: ConfigReader) throws {
        host = reader.string(forKey: "collector.listen.host", default: "127.0.0.1")
        port = try reader.int(forKey: "collector.listen.port", default: 8080, in: 0...65535)
        maxRequestBytes = try reader.int(forKey: "collector.limits.maxRequestBytes", default: 512_000, in: 1_024...100_000_000)
        limits = IngestLimits(
            maximumEventBytes: try reader.int(forKey: "collector.limits.maxEventBytes", default: 32_768, in: 256...10_000_000),
            maximumEventsPerBatch: try reader.int(forKey: "collector.limits.maxEventsPerBatch", default: 2_500, in: 1...100_000),
            maximumDepth: try reader.int(forKey: "collector.limits.maxDepth", default: 64, in: 2...512))
        rateLimitPerSecond = try reader.double(forKey: "collector.rateLimit.requestsPerSecond", default: 500, in: 0.001...1_000_000)
        rateLimitBurst = try reader.int(forKey: "collector.rateLimit.burst", default: 1_000, in: 1...10_000_000)
        trustedProxies = reader.stringArray(forKey: "collector.trustedProxies", default: [])
        for cidr in trustedProxies where CIDR(cidr) == nil {
            throw ConfigurationError("collector.trustedProxies: \(cidr) is not an address or CIDR block")
        }
        maxQueueDepth = try reader.int(forKey: "collector.backpressure.maxQueueDepth", default: 100_000, in: 1...1_000_000_000)
        retryAfterSeconds = try reader.int(forKey: "collector.retryAfterSeconds", default: 5, in: 1...3600)
        spoolDirectory = reader.string(forKey: "collector.spool.directory", default: "/var/lib/tributary/collector-spool")
        spoolMaxBytes = try reader.int(forKey: "collector.spool.maxBytes", default: 1 << 30, in: 1_024...(1 << 50))
        groupCommitMaxBatches = try reader.int(forKey: "collector.groupCommit.maxBatches", default: 500, in: 1...100_000)
        sitesRefreshSeconds = try reader.double(forKey: "collector.sites.refreshSeconds", default: 2, in: 0.1...3600)
        outboxScanSeconds = try reader.double(forKey: "collector.outbox.scanSeconds", default: 5, in: 0.1...3600)
        outboxGraceSeconds = try reader.double(forKey: "collector.outbox.graceSeconds", default: 10, in: 0...3600)
        outboxBufferLimit = try reader.int(forKey: "collector.outbox.bufferLimit", default: 10_000, in: 1...10_000_000)
        partitionDaysAhead = try reader.int(forKey: "collector.partitions.daysAhead", default: 7, in: 1...365)
        partitionRetentionDays = try reader.int(forKey: "collector.partitions.retentionDays", default: 430, in: 7...36_500)
        partitionLockTimeoutMs = try reader.int(forKey: "collector.partitions.lockTimeoutMs", default: 2_000, in: 10...60_000)
        tracker = TrackerConfiguration(
            batchSize: try reader.int(forKey: "collector.tracker.batchSize", default: 100, in: 1...2_500),
            flushIntervalMs: try reader.int(forKey: "collector.tracker.flushIntervalMs", default: 500, in: 50...60_000),
            maxStoredEvents: try reader.int(forKey: "collector.tracker.maxStoredEvents", default: 1_000, in: 10...10_000),
            retryMaxMs: try reader.int(forKey: "collector.tracker.retryMaxMs", default: 15_000, in: 1_000...600_000),
            scriptCacheSeconds: try reader.int(forKey: "collector.tracker.scriptCacheSeconds", default: 86_400, in: 0...31_536_000),
            settingsCacheSeconds: try reader.int(forKey: "collector.tracker.settingsCacheSeconds", default: 300, in: 0...86_400))
        guard tracker.batchSize <= limits.maximumEventsPerBatch else {
            throw ConfigurationError("collector.tracker.batchSize must not exceed collector.limits.maxEventsPerBatch")
        }
        if let instance = reader.int(forKey: "collector.instance") {
            guard (0...1023).contains(instance) else { throw ConfigurationError("collector.instance must be between 0 and 1023") }
            self.instance = instance
        }
    }
}

/// What the browser tracker is told by `GET /v1/settings`, besides the site's own choices.
struct TrackerConfiguration: Sendable {
    var batchSize = 100
    var flushIntervalMs = 500
    var maxStoredEvents = 1_000
    var retryMaxMs = 15_000
    var scriptCacheSeconds = 86_400
    var settingsCacheSeconds = 300
}
