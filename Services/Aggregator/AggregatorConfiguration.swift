import Configuration
import TributaryRuntime

/// The aggregator daemon's own settings.
///
/// ## Configuration keys
/// - `aggregator.concurrency` (int, default 3, 1…64): turns of batches aggregated at once.
/// - `aggregator.maxItemsPerTurn` (int, default 100, 1…1000): the aggregator's round-robin quantum on the
///   `aggregate` queue, in place of `queue.maxItemsPerTurn`: one site's batches are aggregated one turn at a
///   time (the site's lock), so a busy site goes as fast as its turns are large. A turn holds its batches in
///   memory: the peak grows with this times the batches' size (docs/aggregator.md).
/// - `aggregator.sessionTimeoutMinutes` (int, default 30, 1…1440): inactivity that ends a visit.
/// - `aggregator.breakdownLimit` (int, default 1000, 1…1000000): values per site, day and breakdown;
///   new values past it fold into the day's "(other)" row.
/// - `aggregator.lateEventDays` (int, default 7, 1…365): events from days older than this (site time) are
///   not applied live (counted as late in the ledger); `aggregator rebuild` applies them. Interactions,
///   visits and memberships are kept two days longer, then deleted.
/// - `aggregator.spans.buildLimit` (int, default 1000, 0…1000000): spans (sums of daily rows over 2 to 64
///   closed days, which queries without a time dimension read) built per janitor pass; 0 builds none, and
///   queries read daily rows only.
/// - `aggregator.realtimeWindowSeconds` (int, default 300, 10…3600): "current visitors" look back this far.
/// - `aggregator.sites.refreshSeconds` (double, default 5, 0.5…3600): how often sites, time zones,
///   properties and read keys are re-read from the collector's schema.
/// - `aggregator.stats.host` (string, default `127.0.0.1`), `aggregator.stats.port` (int, default 8090):
///   the Stats API and dashboard.
/// - `aggregator.stats.adminTokenFile` (string, optional, secret file): a token that reads every site.
/// - `aggregator.stats.maxRangeDays` (int, default 3660, 1…36600): the longest date range a query may ask for.
/// - `aggregator.stats.maxResults` (int, default 10000, 1…1000000): the most rows one query returns.
/// - `aggregator.stats.maxBodyBytes` (int, default 65536, 1024…10485760): the largest query body.
struct AggregatorConfiguration: Sendable {
    var concurrency: Int
    var maxItemsPerTurn: Int
    var sessionTimeoutSeconds: Double
    var breakdownLimit: Int
    var lateEventDays: Int
    var spanBuildLimit: Int
    var realtimeWindowSeconds: Int
    var sitesRefreshSeconds: Double
    var statsHost: String
    var statsPort: Int
    var adminToken: String?
    var maxRangeDays: Int
    var maxResults: Int
    var maxBodyBytes: Int

    init(reader: ConfigReader) throws {
        concurrency = try reader.int(forKey: "aggregator.concurrency", default: 3, in: 1...64)
        maxItemsPerTurn = try reader.int(forKey: "aggregator.maxItemsPerTurn", default: 100, in: 1...1000)
        sessionTimeoutSeconds = Double(try reader.int(forKey: "aggregator.sessionTimeoutMinutes", default: 30, in: 1...1440) * 60)
        breakdownLimit = try reader.int(forKey: "aggregator.breakdownLimit", default: 1000, in: 1...1_000_000)
        lateEventDays = try reader.int(forKey: "aggregator.lateEventDays", default: 7, in: 1...365)
        spanBuildLimit = try reader.int(forKey: "aggregator.spans.buildLimit", default: 1000, in: 0...1_000_000)
        realtimeWindowSeconds = try reader.int(forKey: "aggregator.realtimeWindowSeconds", default: 300, in: 10...3600)
        sitesRefreshSeconds = try reader.double(forKey: "aggregator.sites.refreshSeconds", default: 5, in: 0.5...3600)
        statsHost = reader.string(forKey: "aggregator.stats.host", default: "127.0.0.1")
        statsPort = try reader.int(forKey: "aggregator.stats.port", default: 8090, in: 0...65535)
        adminToken = try reader.secret(fileKey: "aggregator.stats.adminTokenFile")
        if let token = adminToken, token.count < 16 {
            throw ConfigurationError("aggregator.stats.adminTokenFile must hold a token of at least 16 characters")
        }
        maxRangeDays = try reader.int(forKey: "aggregator.stats.maxRangeDays", default: 3660, in: 1...36_600)
        maxResults = try reader.int(forKey: "aggregator.stats.maxResults", default: 10_000, in: 1...1_000_000)
        maxBodyBytes = try reader.int(forKey: "aggregator.stats.maxBodyBytes", default: 65_536, in: 1024...10_485_760)
    }
}
