import Logging
import ServiceLifecycle
import TributaryPostgres
import TributaryRuntime

/// Deletes what outlived its retention: delivered marks, the attempt log and dead
/// letters (each by its own `forwarder.*.retentionDays`), in slices so no statement holds
/// locks for long. Runs every 10 minutes.
struct ForwarderJanitor: Service, CustomStringConvertible {
    let postgres: PostgresClient
    let configuration: ForwarderConfiguration
    let logger: Logger
    /// Where each pass's result goes (the health-checker's job expectations).
    var jobs: JobReporter?

    var description: String { "ForwarderJanitor" }

    /// Deletes expired rows now; returns how many per table.
    func sweep() async throws -> [String: Int] {
        let tables: [(String, String, String, Int)] = [
            ("deliveries", "site_id, sink_id, event_id", "delivered_at", configuration.deliveriesRetentionDays),
            ("attempts", "site_id, attempt_id", "started_at", configuration.attemptsRetentionDays),
            ("dead_letters", "site_id, dead_letter_id", "dead_at", configuration.deadLettersRetentionDays),
        ]
        var deleted: [String: Int] = [:]
        for (table, key, time, days) in tables {
            var total = 0
            while true {
                let n = try await postgres.query("""
                    DELETE FROM forwarder.\(table) WHERE (\(key)) IN (
                        SELECT \(key) FROM forwarder.\(table) WHERE \(time) < now() - make_interval(days => $1::int) LIMIT 10000)
                    """, [days]).affectedRows
                total += n
                if n < 10000 { break }
            }
            deleted[table] = total
        }
        return deleted
    }

    func run() async throws {
        await runPeriodically("forwarder cleanup", every: .seconds(600), logger: logger) {
            let deleted = try await sweep()
            jobs?.record("janitor", counts: deleted.mapValues(Int64.init))
            if deleted.values.contains(where: { $0 > 0 }) {
                logger.info("forwarder rows past retention deleted", metadata: deleted.mapValues { "\($0)" })
            }
        }
    }
}
