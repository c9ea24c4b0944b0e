import Foundation
import Logging
import ServiceLifecycle
import TributaryPostgres
import TributaryRuntime

/// Keeps the weekly partitions of `hydration.events`: creates them `weeksAhead` weeks
/// ahead (and the current and previous week) and drops those wholly older than the
/// retention, at start-up and every hour. Weeks start on Monday, UTC. Prunes the dedup
/// table `hydration.message_ids` with them, and folds old identify traits.
///
/// Why not pg_partman: it needs a superuser to install its extension and a background
/// worker or cron to run; these two statements per week, run by the owning daemon, are
/// all this table needs, and the job's result is logged like every other job.
struct EventPartitions: Service, CustomStringConvertible {
    let postgres: PostgresClient
    let weeksAhead: Int
    let retentionWeeks: Int
    let logger: Logger
    var jobs: JobReporter? = nil
    /// The dedup window: `hydration.message_ids` rows are kept at least this long, and as
    /// long as the retention (tracing goes through them to the events).
    var dedupWindowDays = 7
    /// Identify traits older than this many days are folded into one row per user.
    var traitsHistoryDays = 90
    /// Rows of `hydration.message_ids` one pruning statement aims to delete.
    static let pruneChunk = 10_000
    /// Users whose old traits rows one statement folds.
    static let foldChunk = 1_000

    var description: String { "EventPartitions" }

    static func weekStart(_ date: Date) -> Date {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateInterval(of: .weekOfYear, for: date)!.start
    }

    static func name(_ start: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd"
        return "events_w" + f.string(from: start)
    }

    /// The columns of `hydration.events` no query filters or joins on: ANALYZE skips them
    /// (a partition does not inherit its parent's per-column statistics targets).
    static let columnsWithoutStatistics = ["original_timestamp", "sent_at", "visitor_hash", "previous_visitor_hash",
                                           "properties", "traits", "context", "enrichment", "metric", "integrations"]

    /// The statement that sets ``columnsWithoutStatistics``' statistics target to 0 on `table`.
    static func withoutStatistics(_ table: String) -> String {
        "ALTER TABLE \(table) " + columnsWithoutStatistics.map { "ALTER COLUMN \($0) SET STATISTICS 0" }.joined(separator: ", ")
    }

    /// Creates the partitions of the weeks around `date` (previous through `weeksAhead`).
    /// - Returns: How many it created (0 when they all existed).
    @discardableResult
    func ensure(around date: Date) async throws -> Int {
        var start = Self.weekStart(date).addingTimeInterval(-7 * 86_400)
        var created = 0
        for _ in 0...(weeksAhead + 1) {
            let end = start.addingTimeInterval(7 * 86_400)
            do {
                let exists = try await postgres.query("SELECT to_regclass($1) IS NOT NULL AS e",
                                                      ["hydration.\(Self.name(start))"]).rows.first?.bool("e") ?? false
                if !exists {
                    let table = "hydration.\(Self.name(start))"
                    try await postgres.withTransaction { tx in
                        try await tx.query("""
                            CREATE TABLE IF NOT EXISTS \(table) PARTITION OF hydration.events
                            FOR VALUES FROM ('\(PostgresTime.format(start))') TO ('\(PostgresTime.format(end))')
                            """)
                        try await tx.query(Self.withoutStatistics(table))
                    }
                    created += 1
                }
            } catch {
                // Another instance created it first.
                guard let error = error as? PostgresError, error.sqlState == "42P07" || error.sqlState == "23505" else { throw error }
            }
            start = end
        }
        return created
    }

    /// The weeks after this one whose partitions exist, counted without a gap.
    func weeksReady(after date: Date) async throws -> Int {
        let rows = try await postgres.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE n.nspname = 'hydration' AND p.relname = 'events'
            """).rows
        let names = Set(try rows.compactMap { try $0.string("relname") })
        var start = Self.weekStart(date)
        var ready = 0
        while ready < 520 {
            start = start.addingTimeInterval(7 * 86_400)
            guard names.contains(Self.name(start)) else { break }
            ready += 1
        }
        return ready
    }

    /// Drops partitions that end before the retention; returns their names.
    func dropExpired(now: Date) async throws -> [String] {
        let cutoff = Self.name(Self.weekStart(now.addingTimeInterval(-Double(retentionWeeks) * 7 * 86_400)))
        let rows = try await postgres.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE n.nspname = 'hydration' AND p.relname = 'events' AND c.relname LIKE 'events_w%'
            """).rows
        var dropped: [String] = []
        for name in try rows.compactMap({ try $0.string("relname") }).sorted() where name < cutoff {
            // The name comes from the catalogue and matches events_wYYYYMMDD.
            guard name.count == 16, name.dropFirst(8).allSatisfy(\.isNumber) else { continue }
            try await postgres.query("DROP TABLE hydration.\(name)")
            dropped.append(name)
        }
        return dropped
    }

    /// Deletes the dedup rows first seen before both the retention and the dedup window;
    /// returns how many. Rows arrive in `first_seen` order (its BRIN index follows the
    /// heap), so it walks time windows from the oldest row, each found through that index,
    /// sized to delete about `pruneChunk` rows a statement (a window that deleted few grows,
    /// one that deleted many shrinks; an empty one jumps to the next row).
    /// `sites` limits it to those sites (tests sharing a database with running daemons).
    func pruneMessageIDs(now: Date, sites: [Int64]? = nil) async throws -> Int {
        let only = sites.map { PostgresArray.ints($0) }
        let keptDays = max(Double(retentionWeeks) * 7, Double(dedupWindowDays))
        let cutoff = now.addingTimeInterval(-keptDays * 86_400)
        func oldest(from: Date?) async throws -> Date? {
            try await postgres.query("""
                SELECT min(first_seen) AS t FROM hydration.message_ids
                WHERE ($1::timestamptz IS NULL OR first_seen >= $1) AND first_seen < $2
                  AND ($3::bigint[] IS NULL OR site_id = ANY($3))
                """, [from, cutoff, only]).rows.first?.date("t")
        }
        var deleted = 0
        var window = 60.0
        var next = try await oldest(from: nil)
        while let from = next, from < cutoff {
            let to = min(from.addingTimeInterval(window), cutoff)
            let n = try await postgres.query("""
                DELETE FROM hydration.message_ids WHERE first_seen >= $1 AND first_seen < $2
                    AND ($3::bigint[] IS NULL OR site_id = ANY($3))
                """, [from, to, only]).affectedRows
            deleted += n
            if n < Self.pruneChunk / 2 { window *= 2 } else if n > Self.pruneChunk * 2 { window = max(1, window / 2) }
            next = n == 0 ? try await oldest(from: to) : to
        }
        return deleted
    }

    /// Folds each user's identify rows older than `traitsHistoryDays` into one row, dated
    /// the latest of them, holding their traits merged in time order (later values win):
    /// what the traits lookup would compute for any time after that date, so events from
    /// then on are hydrated as before, and the history read per user stays bounded.
    /// Returns how many rows were folded away.
    /// `sites` limits it to those sites (tests sharing a database with running daemons).
    func foldOldTraits(now: Date, sites: [Int64]? = nil) async throws -> Int {
        let only = sites.map { PostgresArray.ints($0) }
        let cutoff = now.addingTimeInterval(-Double(traitsHistoryDays) * 86_400)
        var folded = 0
        // Users in key order, a chunk at a time from where the last one ended (the primary
        // key's order, so each chunk reads only its own range).
        var after: (site: Int64, user: String) = (Int64.min, "")
        while true {
            let rows = try await postgres.query("""
                WITH users AS (
                    SELECT site_id, user_id FROM hydration.user_traits
                    WHERE (site_id, user_id) > ($3, $4) AND valid_from < $1 AND ($5::bigint[] IS NULL OR site_id = ANY($5))
                    GROUP BY site_id, user_id HAVING count(*) > 1 ORDER BY site_id, user_id LIMIT $2
                ), old AS (
                    DELETE FROM hydration.user_traits t USING users u
                    WHERE t.site_id = u.site_id AND t.user_id = u.user_id AND t.valid_from < $1
                    RETURNING t.site_id, t.user_id, t.valid_from, t.traits
                ), merged AS (
                    SELECT DISTINCT ON (o.site_id, o.user_id, kv.key) o.site_id, o.user_id, kv.key, kv.value
                    FROM old o, jsonb_each(o.traits) AS kv
                    ORDER BY o.site_id, o.user_id, kv.key, o.valid_from DESC
                ), kept AS (
                    INSERT INTO hydration.user_traits (site_id, user_id, valid_from, traits)
                    SELECT o.site_id, o.user_id, max(o.valid_from),
                           coalesce((SELECT jsonb_object_agg(m.key, m.value) FROM merged m
                                     WHERE m.site_id = o.site_id AND m.user_id = o.user_id), '{}'::jsonb)
                    FROM old o GROUP BY o.site_id, o.user_id
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM old) - (SELECT count(*) FROM kept) AS folded,
                       (SELECT count(*) FROM kept) AS users, last.site_id, last.user_id
                FROM (SELECT NULL) AS one
                LEFT JOIN (SELECT site_id, user_id FROM users ORDER BY site_id DESC, user_id DESC LIMIT 1) AS last ON true
                """, [cutoff, Self.foldChunk, after.site, after.user, only]).rows
            guard let row = rows.first else { return folded }
            folded += Int(try row.int("folded") ?? 0)
            guard try (row.int("users") ?? 0) >= Int64(Self.foldChunk), let site = try row.int("site_id"),
                  let user = try row.string("user_id") else { return folded }
            after = (site, user)
        }
    }

    func maintain(now: Date = Date()) async throws {
        let created = try await ensure(around: now)
        let dropped = try await dropExpired(now: now)
        let pruned = try await pruneMessageIDs(now: now)
        let folded = try await foldOldTraits(now: now)
        let ready = try await weeksReady(after: now)
        logger.notice("event partitions maintained", metadata: [
            "job": "hydration-partitions", "weeks.ahead": "\(weeksAhead)", "created": "\(created)",
            "dropped": "\(dropped.joined(separator: ","))", "weeks.ready": "\(ready)", "message_ids.pruned": "\(pruned)",
            "traits.folded": "\(folded)",
        ])
        // Creating nothing is normal (the weeks existed); next week missing after the job is not.
        jobs?.record("partitions", counts: ["created": Int64(created), "dropped": Int64(dropped.count), "weeksReady": Int64(ready),
                                           "messageIdsPruned": Int64(pruned), "traitsFolded": Int64(folded)],
                     anomaly: ready < 1 ? "next week's partition of hydration.events does not exist after the job ran" : nil)
    }

    func run() async throws {
        await runPeriodically("hydration-partitions", every: .seconds(3600), logger: logger) { try await maintain() }
    }
}
