import Foundation
import Logging
import ServiceLifecycle
import TributaryPostgres
import TributaryRuntime

/// Deletes what the aggregator no longer needs, a bounded number of rows at a time:
/// visits idle past `aggregator.sessionRetentionHours`, and visitor memberships of days
/// older than `aggregator.lateEventDays` + 2 (no live event can reach those days).
struct AggregatorJanitor: Service, CustomStringConvertible {
    let postgres: PostgresClient
    let configuration: AggregatorConfiguration
    let logger: Logger
    var interval: Duration = .seconds(600)
    /// Rows deleted per statement.
    var chunk = 10_000

    var description: String { "AggregatorJanitor" }

    func run() async throws {
        await runPeriodically("aggregator cleanup", every: interval, logger: logger) {
            let (sessions, members) = try await clean(now: Date())
            if sessions + members > 0 {
                logger.info("aggregator cleanup", metadata: ["sessions.deleted": "\(sessions)", "visitors.deleted": "\(members)"])
            }
        }
    }

    /// One pass; returns (visits, memberships) deleted.
    func clean(now: Date) async throws -> (Int, Int) {
        let idle = now.addingTimeInterval(-Double(configuration.sessionRetentionHours) * 3600)
        let before = LocalClock.dateText(LocalClock(identifier: "UTC").day(now) - Int32(configuration.lateEventDays + 2))
        var sessions = 0
        var members = 0
        while !Task.isCancelled {
            let n = try await postgres.query("""
                DELETE FROM aggregator.sessions WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM aggregator.sessions WHERE last_seen < $1 LIMIT $2))
                """, [idle, chunk]).affectedRows
            sessions += n
            if n < chunk { break }
        }
        while !Task.isCancelled {
            let n = try await postgres.query("""
                DELETE FROM aggregator.visitors WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM aggregator.visitors WHERE day < $1::date LIMIT $2))
                """, [before, chunk]).affectedRows
            members += n
            if n < chunk { break }
        }
        return (sessions, members)
    }
}
