import Foundation
import Logging
import ServiceLifecycle
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// Deletes what the aggregator no longer needs, a bounded number of rows at a time:
/// interactions, visits and visitor memberships from before `aggregator.lateEventDays` + 2
/// days (no live event can reach them; the rollups keep their counts). Each pass then builds
/// the spans the sites are missing (`SpanBuilder`).
struct AggregatorJanitor: Service, CustomStringConvertible {
    let postgres: PostgresClient
    let configuration: AggregatorConfiguration
    let logger: Logger
    var interval: Duration = .seconds(600)
    /// Rows deleted per statement.
    var chunk = 10_000
    /// Where each pass's result goes (the health-checker's job expectations).
    var jobs: JobReporter?
    /// Builds missing spans after each cleanup.
    var spans: SpanBuilder?

    var description: String { "AggregatorJanitor" }

    func run() async throws {
        await runPeriodically("aggregator cleanup", every: interval, logger: logger) {
            let now = Date()
            let deleted = try await clean(now: now)
            let built = try await spans?.pass(now: now) ?? SpanBuilder.Report()
            jobs?.record("janitor", counts: ["deleted": Int64(deleted), "spans": Int64(built.spans)])
            if deleted > 0 || built.spans > 0 {
                logger.info("aggregator cleanup", metadata: ["rows.deleted": "\(deleted)", "spans.built": "\(built.spans)",
                                                             "spans.remaining": "\(built.remaining)"])
            }
        }
    }

    /// One pass; returns the rows deleted.
    func clean(now: Date) async throws -> Int {
        let utc = LocalClock(identifier: "UTC")
        let day = utc.day(now) - Int32(configuration.lateEventDays + 2)
        let cutoff = utc.start(ofDay: day)
        var deleted = 0
        for (table, condition, value) in [
            ("visitor_events", "at < $1::timestamptz", ISO8601.format(cutoff)),
            ("visits", "last_seen < $1::timestamptz", ISO8601.format(cutoff)),
            ("visitor_days", "day < $1::date", LocalClock.dateText(day)),
        ] {
            while !Task.isCancelled {
                let n = try await postgres.query("""
                    DELETE FROM aggregator.\(table) WHERE ctid = ANY (ARRAY(
                        SELECT ctid FROM aggregator.\(table) WHERE \(condition) LIMIT $2))
                    """, [value, chunk]).affectedRows
                deleted += n
                if n < chunk { break }
            }
        }
        return deleted
    }
}
