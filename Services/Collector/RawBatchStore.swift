import Foundation
import TributaryPostgres

/// The SQL of the collector schema's raw batches and outbox.
struct RawBatchStore: Sendable {
    let postgres: PostgresClient

    static let copyRaw = """
        COPY collector.raw_batches (site_id, batch_id, received_at, client_ip, user_agent, event_count, payload)
        FROM STDIN (FORMAT binary)
        """
    static let copyOutbox = "COPY collector.outbox (site_id, batch_id, received_at) FROM STDIN (FORMAT binary)"

    /// Saves a group of new batches and their outbox rows in one transaction (two COPYs,
    /// one COMMIT): after this returns, every batch is durable.
    func commit(_ records: [RawBatchRecord]) async throws {
        let (raw, outbox) = Self.copyData(records)
        try await postgres.withTransaction { tx in
            try await tx.copy(Self.copyRaw, data: raw)
            try await tx.copy(Self.copyOutbox, data: outbox)
        }
    }

    /// Saves batches that may already be saved (spool drain, retries): through a staging
    /// table, skipping any batch whose key exists. Returns the batches stored now: only
    /// they get an outbox row and must be enqueued (a batch stored before was, or its own
    /// outbox row still is, so a drain repeated after a crash enqueues nothing twice).
    func insertIfAbsent(_ records: [RawBatchRecord]) async throws -> [RawBatchRecord] {
        let (raw, _) = Self.copyData(records)
        let inserted = try await postgres.withTransaction { tx -> Set<Int64> in
            try await tx.query("""
                CREATE TEMP TABLE IF NOT EXISTS raw_batches_stage
                (LIKE collector.raw_batches INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
                """)
            try await tx.copy("""
                COPY raw_batches_stage (site_id, batch_id, received_at, client_ip, user_agent, event_count, payload)
                FROM STDIN (FORMAT binary)
                """, data: raw)
            let rows = try await tx.query("""
                WITH stored AS (
                    INSERT INTO collector.raw_batches SELECT * FROM raw_batches_stage ON CONFLICT DO NOTHING
                    RETURNING site_id, batch_id, received_at)
                INSERT INTO collector.outbox (site_id, batch_id, received_at)
                SELECT site_id, batch_id, received_at FROM stored ON CONFLICT DO NOTHING
                RETURNING batch_id
                """).rows
            return Set(try rows.compactMap { try $0.int("batch_id") })
        }
        return records.filter { inserted.contains($0.batchID) }
    }

    /// Outbox rows older than `graceSeconds`, oldest first, with their batches.
    func pendingOutbox(graceSeconds: Double, limit: Int) async throws -> [RawBatchRecord] {
        try await postgres.query("""
            SELECT r.site_id, r.batch_id, r.received_at, r.client_ip, r.user_agent, r.event_count, r.payload
            FROM collector.outbox o
            JOIN collector.raw_batches r
              ON r.site_id = o.site_id AND r.batch_id = o.batch_id AND r.received_at = o.received_at
            WHERE o.created_at < now() - make_interval(secs => $1)
            ORDER BY o.created_at, o.batch_id
            LIMIT $2
            """, [graceSeconds, limit]).rows.map { row in
            RawBatchRecord(batchID: try row.int("batch_id") ?? 0, siteID: try row.int("site_id") ?? 0,
                           receivedAt: try row.date("received_at") ?? Date(), clientIP: try row.string("client_ip"),
                           userAgent: try row.string("user_agent"), eventCount: Int(try row.int("event_count") ?? 0),
                           payload: try row.string("payload") ?? "")
        }
    }

    /// Forgets outbox rows of batches now enqueued.
    func removeFromOutbox(_ records: [RawBatchRecord]) async throws {
        guard !records.isEmpty else { return }
        try await postgres.query("""
            DELETE FROM collector.outbox o USING unnest($1::bigint[], $2::bigint[]) AS done(site_id, batch_id)
            WHERE o.site_id = done.site_id AND o.batch_id = done.batch_id
            """, [Self.array(records.map(\.siteID)), Self.array(records.map(\.batchID))])
    }

    /// Creates the daily partitions of `raw_batches` covering `days` (UTC dates), if missing.
    func ensurePartitions(for days: Set<DateComponents>) async throws {
        for day in days.sorted(by: { ($0.year!, $0.month!, $0.day!) < ($1.year!, $1.month!, $1.day!) }) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            guard let start = calendar.date(from: day), let end = calendar.date(byAdding: .day, value: 1, to: start) else { continue }
            // Identifiers and bounds come from dates, never from input.
            let name = Self.partitionName(day)
            let from = String(format: "%04d-%02d-%02d", day.year!, day.month!, day.day!)
            let toParts = calendar.dateComponents([.year, .month, .day], from: end)
            let to = String(format: "%04d-%02d-%02d", toParts.year!, toParts.month!, toParts.day!)
            do {
                try await postgres.query("""
                    CREATE TABLE IF NOT EXISTS collector.\(name) PARTITION OF collector.raw_batches
                    FOR VALUES FROM ('\(from) 00:00:00+00') TO ('\(to) 00:00:00+00')
                    """)
            } catch {
                // 42P07/23505: created concurrently by another instance.
                guard error.sqlState == "42P07" || error.sqlState == "23505" else { throw error }
            }
        }
    }

    /// What one pass of ``dropExpired(now:retentionDays:notBefore:lockTimeoutMs:)`` did.
    struct Expiry: Sendable {
        /// Partitions dropped.
        var dropped: [String] = []
        /// Partitions kept because some of their batches still wait in the outbox.
        var held: [String] = []
        /// Partitions left for the next pass: the table stayed busy past the lock timeout.
        var deferred: [String] = []
    }

    /// Drops the daily partitions of `raw_batches` wholly older than `retentionDays` days
    /// (UTC), each in its own short transaction. The transaction locks the parent table
    /// first, as a plain `DROP` of a partition does and as every query of the table does
    /// (the partition first, with a query between the two, deadlocked), so no writer can
    /// put a batch into the day between the check and the drop; it waits at most
    /// `lockTimeoutMs` for the lock (writers queue behind it meanwhile), and a day it did
    /// not get is left for the next pass. A day is kept if any of its batches still has an
    /// outbox row (saved, not yet enqueued: the relay still needs it). `notBefore` leaves
    /// the days before it alone (tests sharing a database with running collectors).
    func dropExpired(now: Date, retentionDays: Int, notBefore: Date? = nil, lockTimeoutMs: Int = 2_000) async throws -> Expiry {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let firstKept = calendar.startOfDay(for: now.addingTimeInterval(-Double(retentionDays) * 86_400))
        let rows = try await postgres.query("""
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE n.nspname = 'collector' AND p.relname = 'raw_batches' AND c.relname LIKE 'raw_batches_%'
            """).rows
        // The days wholly before the first one kept. The names come from the catalogue; only
        // raw_batches_YYYYMMDD is ours to drop.
        var days: [(name: String, start: Date, end: Date)] = []
        for name in try rows.compactMap({ try $0.string("relname") }).sorted() {
            let digits = name.dropFirst("raw_batches_".count)
            guard digits.count == 8, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)), let day = Int(digits.suffix(2)),
                  let start = calendar.date(from: DateComponents(year: year, month: month, day: day)),
                  let end = calendar.date(byAdding: .day, value: 1, to: start),
                  end <= firstKept, start >= notBefore ?? .distantPast else { continue }
            days.append((name, start, end))
        }
        var expiry = Expiry()
        for (index, day) in days.enumerated() {
            let kept: Bool
            do {
                kept = try await postgres.withTransaction { tx -> Bool in
                    try await tx.query("SET LOCAL lock_timeout = \(max(lockTimeoutMs, 1))")
                    try await tx.query("LOCK TABLE ONLY collector.raw_batches IN ACCESS EXCLUSIVE MODE")
                    let waiting = try await tx.query("""
                        SELECT EXISTS (SELECT 1 FROM collector.outbox WHERE received_at >= $1 AND received_at < $2) AS waiting
                        """, [day.start, day.end]).rows.first?.bool("waiting") ?? true
                    if !waiting { try await tx.query("DROP TABLE collector.\(day.name)") }
                    return waiting
                }
            } catch let error as PostgresError where error.sqlState == "55P03" {
                // lock_not_available: the table is busy; this day and the rest wait for the next pass.
                expiry.deferred = days[index...].map(\.name)
                break
            }
            if kept { expiry.held.append(day.name) } else { expiry.dropped.append(day.name) }
        }
        return expiry
    }

    /// The partition of one UTC day: `raw_batches_YYYYMMDD`.
    static func partitionName(_ day: DateComponents) -> String {
        String(format: "raw_batches_%04d%02d%02d", day.year!, day.month!, day.day!)
    }

    /// The UTC days from `from` to `through` inclusive.
    static func days(from: Date, through: Date) -> Set<DateComponents> {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var result: Set<DateComponents> = []
        var day = calendar.startOfDay(for: from)
        while day <= through {
            result.insert(calendar.dateComponents([.year, .month, .day], from: day))
            day = calendar.date(byAdding: .day, value: 1, to: day)!
        }
        return result
    }

    static func array(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }

    static func copyData(_ records: [RawBatchRecord]) -> (raw: [UInt8], outbox: [UInt8]) {
        var raw = PostgresCopyWriter(reservingCapacity: records.reduce(64) { $0 + $1.payload.utf8.count + 128 })
        var outbox = PostgresCopyWriter(reservingCapacity: records.count * 40 + 64)
        for r in records {
            raw.beginRow(columns: 7)
            raw.append(int: r.siteID)
            raw.append(int: r.batchID)
            raw.append(timestamp: r.receivedAt)
            if let ip = r.clientIP { raw.append(text: ip) } else { raw.appendNull() }
            if let agent = r.userAgent { raw.append(text: agent) } else { raw.appendNull() }
            raw.append(int32: Int32(r.eventCount))
            raw.append(text: r.payload)
            outbox.beginRow(columns: 3)
            outbox.append(int: r.siteID)
            outbox.append(int: r.batchID)
            outbox.append(timestamp: r.receivedAt)
        }
        return (raw.finish(), outbox.finish())
    }
}
