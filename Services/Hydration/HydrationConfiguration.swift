import Configuration
import TributaryRuntime

/// The hydration daemon's own settings.
///
/// ## Configuration keys
/// - `hydration.dedupWindowDays` (int, default 7): a messageId seen again within this many days is a duplicate.
/// - `hydration.limits.maxProperties` (int, default 500), `.maxNameLength` (int, default 200),
///   `.maxIdLength` (int, default 255), `.maxTags` (int, default 50).
/// - `hydration.futureToleranceSeconds` (double, default 60): corrected times later than receipt by more are clamped.
/// - `hydration.maxEventAgeDays` (double, default 30): older events are stored with the flag `old`.
/// - `hydration.retentionWeeks` (int, default 60): weekly event partitions older than this are dropped.
/// - `hydration.partitionWeeksAhead` (int, default 4): weekly partitions created ahead of time.
/// - `hydration.traitsHistoryDays` (int, default 90, 1…3650): a user's identify traits older than this are
///   folded into one row (as of the latest of them), so the history read for every event stays bounded;
///   events older than that see the folded traits only from that row's time on.
/// - `hydration.concurrency` (int, default 4, 1…64): turns (transactions) processed at once (bounds PostgreSQL
///   load); each holds one of the pool's connections (`hydration.postgres.poolSize`, default 6) while it runs.
/// - `hydration.sitesPerTurn` (int, default 8, 1…100): the sites whose queued batches (up to
///   `queue.maxItemsPerTurn` each, in the queue's fair order) one worker applies in one transaction; more
///   shares a turn's fixed costs (statements, round trips, the commit) among more small sites.
/// - `hydration.instance` (int, 0…1023, optional): this instance's number in event ids.
/// - `hydration.geoip.database` (string, default `/var/lib/tributary/GeoLite2-City.mmdb`): a
///   MaxMind-format database; empty turns geo enrichment off. A path that cannot be opened stops start-up.
/// - `hydration.userAgent.regexes` (string, default `/usr/share/uap-core/regexes.yaml`): the uap-core
///   rules; empty turns user agent parsing off.
/// - `hydration.userAgent.cacheSize` (int, default 10000): distinct user agents whose parse is kept.
/// - `hydration.visitorContinuityMinutes` (int, default 30, 0…240): for this long after UTC midnight, events
///   also carry the visitor hash under yesterday's salt (`previousVisitorHash`), so the aggregator can continue
///   a visit that crosses midnight; 0 turns it off. Match it to `aggregator.sessionTimeoutMinutes`.
/// - `hydration.sinks.refreshSeconds` (double, default 2, 0.1…300): how often the sinks' routing rules are
///   read from `forwarder.sinks`; a sink added, changed or disabled takes effect within this time.
/// - `hydration.allRejectedMinEvents` (int, default 100, 1…100000): a batch of at least this many events that
///   keeps none (all invalid) is reported to the health-checker as an anomalous job result.
struct HydrationConfiguration: Sendable {
    var dedupWindowDays: Int
    var limits: ValidationLimits
    var clock: EventClock
    var retentionWeeks: Int
    var partitionWeeksAhead: Int
    var traitsHistoryDays: Int
    var concurrency: Int
    var sitesPerTurn: Int
    var instance: Int?
    var geoDatabase: String
    var userAgentRegexes: String
    var userAgentCacheSize: Int
    var visitorContinuitySeconds: Double
    var sinksRefreshSeconds: Double
    var allRejectedMinEvents: Int

    init(reader: ConfigReader) throws {
        dedupWindowDays = try reader.int(forKey: "hydration.dedupWindowDays", default: 7, in: 1...3650)
        var limits = ValidationLimits()
        limits.maxProperties = try reader.int(forKey: "hydration.limits.maxProperties", default: 500, in: 1...100_000)
        limits.maxNameLength = try reader.int(forKey: "hydration.limits.maxNameLength", default: 200, in: 1...10_000)
        limits.maxIdLength = try reader.int(forKey: "hydration.limits.maxIdLength", default: 255, in: 1...10_000)
        limits.maxTags = try reader.int(forKey: "hydration.limits.maxTags", default: 50, in: 0...10_000)
        self.limits = limits
        clock = EventClock(
            futureToleranceSeconds: try reader.double(forKey: "hydration.futureToleranceSeconds", default: 60, in: 0...86_400),
            maximumAgeSeconds: try reader.double(forKey: "hydration.maxEventAgeDays", default: 30, in: 0.01...36_500) * 86_400)
        retentionWeeks = try reader.int(forKey: "hydration.retentionWeeks", default: 60, in: 1...5_200)
        partitionWeeksAhead = try reader.int(forKey: "hydration.partitionWeeksAhead", default: 4, in: 1...52)
        traitsHistoryDays = try reader.int(forKey: "hydration.traitsHistoryDays", default: 90, in: 1...3650)
        concurrency = try reader.int(forKey: "hydration.concurrency", default: 4, in: 1...64)
        sitesPerTurn = try reader.int(forKey: "hydration.sitesPerTurn", default: 8, in: 1...100)
        geoDatabase = reader.string(forKey: "hydration.geoip.database", default: "/var/lib/tributary/GeoLite2-City.mmdb")
        userAgentRegexes = reader.string(forKey: "hydration.userAgent.regexes", default: "/usr/share/uap-core/regexes.yaml")
        userAgentCacheSize = try reader.int(forKey: "hydration.userAgent.cacheSize", default: 10_000, in: 1...10_000_000)
        visitorContinuitySeconds = Double(try reader.int(forKey: "hydration.visitorContinuityMinutes", default: 30,
                                                         in: 0...240) * 60)
        sinksRefreshSeconds = try reader.double(forKey: "hydration.sinks.refreshSeconds", default: 2, in: 0.1...300)
        allRejectedMinEvents = try reader.int(forKey: "hydration.allRejectedMinEvents", default: 100, in: 1...100_000)
        if let instance = reader.int(forKey: "hydration.instance") {
            guard (0...1023).contains(instance) else { throw ConfigurationError("hydration.instance must be between 0 and 1023") }
            self.instance = instance
        }
    }
}
