import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of the hydration schema.
struct HydrationStore: Sendable {
    /// Claims the batches in the ledger; returns those claimed now. A batch applied before
    /// is not returned (one being applied by another instance is waited for, then not returned).
    static func claim(_ tx: PostgresConnection, site: Int64, batches: [Int64]) async throws -> Set<Int64> {
        let rows = try await tx.query("""
            INSERT INTO hydration.ledger (site_id, batch_id) SELECT $1, b FROM unnest($2::bigint[]) AS b
            ON CONFLICT DO NOTHING RETURNING batch_id
            """, [site, "{" + batches.map(String.init).joined(separator: ",") + "}"]).rows
        return Set(try rows.compactMap { try $0.int("batch_id") })
    }

    /// Records the message ids (each with its batch and receipt time); returns those that
    /// are new, or were last seen before the window.
    static func firstSeen(_ tx: PostgresConnection, site: Int64, rows: [(messageID: String, batch: RawBatchMessage)],
                          windowDays: Int) async throws -> Set<String> {
        guard !rows.isEmpty else { return [] }
        let result = try await tx.query("""
            INSERT INTO hydration.message_ids (site_id, message_id, first_seen, batch_id)
            SELECT $1, m, t, b FROM unnest($2::text[], $3::timestamptz[], $4::bigint[]) AS x(m, t, b)
            ON CONFLICT (site_id, message_id) DO UPDATE SET first_seen = EXCLUDED.first_seen, batch_id = EXCLUDED.batch_id
            WHERE hydration.message_ids.first_seen < EXCLUDED.first_seen - make_interval(days => $5::int)
            RETURNING message_id
            """, [site, PostgresArray.text(rows.map(\.messageID)),
                  PostgresArray.text(rows.map { ISO8601.format($0.batch.receivedAt) }),
                  "{" + rows.map { String($0.batch.batchID) }.joined(separator: ",") + "}", windowDays]).rows
        return Set(try result.compactMap { try $0.string("message_id") })
    }

    /// Fills in the ledger rows' counts: (batch, received, stored, rejected, duplicate,
    /// events routed per queue).
    static func recordCounts(_ tx: PostgresConnection, site: Int64,
                             rows: [(Int64, Int, Int, Int, Int, [String: Int])]) async throws {
        guard !rows.isEmpty else { return }
        func array(_ values: [Int]) -> String { "{" + values.map(String.init).joined(separator: ",") + "}" }
        let routed = rows.map { JSONValue.object($0.5.mapValues { .int(Int64($0)) }).jsonText }
        try await tx.query("""
            UPDATE hydration.ledger l SET events_received = x.r, events_stored = x.s, events_rejected = x.j,
                   events_duplicate = x.d, routed = x.a::jsonb
            FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
                 AS x(b, r, s, j, d, a)
            WHERE l.site_id = $1 AND l.batch_id = x.b
            """, [site, "{" + rows.map { String($0.0) }.joined(separator: ",") + "}", array(rows.map(\.1)),
                  array(rows.map(\.2)), array(rows.map(\.3)), array(rows.map(\.4)), PostgresArray.text(routed)])
    }

    /// Saves identify traits and alias links of this batch (one statement each).
    static func saveIdentities(_ tx: PostgresConnection, site: Int64, events: [(Event, Date)]) async throws {
        var traits: [String: (user: String, time: Date, traits: [String: JSONValue])] = [:]
        var aliases: [String: String] = [:]
        for (event, time) in events {
            if event.type == .identify, let user = event.userId, let values = event.traits, !values.isEmpty {
                let key = user + "\u{1}" + ISO8601.format(time)
                var merged = traits[key]?.traits ?? [:]
                for (k, v) in values { merged[k] = v }
                traits[key] = (user, time, merged)
            }
            if event.type == .alias, let user = event.userId, let previous = event.previousId, aliases[previous] == nil {
                aliases[previous] = user
            }
        }
        if !traits.isEmpty {
            let rows = Array(traits.values)
            let json = rows.map { JSONValue.object($0.traits).withoutNUL().jsonText }
            try await tx.query("""
                INSERT INTO hydration.user_traits (site_id, user_id, valid_from, traits)
                SELECT $1, u, t, j::jsonb FROM unnest($2::text[], $3::timestamptz[], $4::text[]) AS x(u, t, j)
                ON CONFLICT (site_id, user_id, valid_from) DO UPDATE SET traits = hydration.user_traits.traits || EXCLUDED.traits
                """, [site, PostgresArray.text(rows.map(\.user)), PostgresArray.text(rows.map { ISO8601.format($0.time) }),
                      PostgresArray.text(json)])
        }
        if !aliases.isEmpty {
            try await tx.query("""
                INSERT INTO hydration.aliases (site_id, previous_id, user_id)
                SELECT $1, p, u FROM unnest($2::text[], $3::text[]) AS x(p, u) ON CONFLICT DO NOTHING
                """, [site, PostgresArray.text(Array(aliases.keys)), PostgresArray.text(Array(aliases.values))])
        }
    }

    /// The canonical user of each id (through alias links).
    static func canonicalUsers(_ tx: PostgresConnection, site: Int64, ids: Set<String>) async throws -> [String: String] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await tx.query("""
            SELECT previous_id, user_id FROM hydration.aliases WHERE site_id = $1 AND previous_id = ANY($2::text[])
            """, [site, PostgresArray.text(Array(ids))]).rows
        var map: [String: String] = [:]
        for row in rows { if let p = try row.string("previous_id"), let u = try row.string("user_id") { map[p] = u } }
        return map
    }

    /// Every traits row of the users, oldest first, up to `until`.
    static func traitHistory(_ tx: PostgresConnection, site: Int64, users: Set<String>,
                             until: Date) async throws -> [String: [(Date, [String: JSONValue])]] {
        guard !users.isEmpty else { return [:] }
        let rows = try await tx.query("""
            SELECT user_id, valid_from, traits::text AS traits FROM hydration.user_traits
            WHERE site_id = $1 AND user_id = ANY($2::text[]) AND valid_from <= $3
            ORDER BY user_id, valid_from
            """, [site, PostgresArray.text(Array(users)), until]).rows
        var history: [String: [(Date, [String: JSONValue])]] = [:]
        for row in rows {
            guard let user = try row.string("user_id"), let from = try row.date("valid_from"),
                  let text = try row.string("traits"),
                  let traits = try? JSONValue.parse(Array(text.utf8)).objectValue else { continue }
            history[user, default: []].append((from, traits))
        }
        return history
    }

    static let copyEvents = """
        COPY hydration.events (site_id, event_id, received_at, batch_id, message_id, type, name, user_id, anonymous_id,
            event_time, original_timestamp, sent_at, visitor_hash, properties, traits, context, enrichment, metric, flags,
            previous_visitor_hash, integrations)
        FROM STDIN (FORMAT binary)
        """

    static func copyData(site: Int64, events: [(HydratedEvent, HydratedEvent.EncodedObjects, [String], Int64)]) -> [UInt8] {
        var w = PostgresCopyWriter()
        func text(_ s: String?) { if let s { w.append(text: s.withoutNUL()) } else { w.appendNull() } }
        func json(_ bytes: [UInt8]?) { if let bytes { w.append(jsonbBytes: bytes) } else { w.appendNull() } }
        for (e, objects, flags, batch) in events {
            w.beginRow(columns: 21)
            w.append(int: site)
            w.append(int: e.eventID)
            w.append(timestamp: e.receivedAt)
            w.append(int: batch)
            text(e.messageID)
            text(e.type.rawValue)
            text(e.name)
            text(e.userID)
            text(e.anonymousID)
            w.append(timestamp: e.timestamp)
            text(e.originalTimestamp)
            text(e.sentAt)
            text(e.visitorHash)
            json(objects.properties)
            json(objects.traits)
            json(objects.context)
            w.append(jsonbBytes: objects.enrichment)
            json(objects.metric)
            w.append(text: flags.joined(separator: ","))
            text(e.previousVisitorHash)
            json(objects.integrations)
        }
        return w.finish()
    }

    static let copyFailedEvents = """
        COPY hydration.failed_events (site_id, batch_id, position, received_at, rule, field, reason, raw)
        FROM STDIN (FORMAT binary)
        """

    static func copyFailures(site: Int64,
                             failures: [(batch: Int64, receivedAt: Date, position: Int, failure: ValidationFailure, raw: String)]) -> [UInt8] {
        var w = PostgresCopyWriter()
        for f in failures {
            w.beginRow(columns: 8)
            w.append(int: site)
            w.append(int: f.batch)
            w.append(int32: Int32(f.position))
            w.append(timestamp: f.receivedAt)
            w.append(text: f.failure.rule)
            if let field = f.failure.field { w.append(text: field.withoutNUL()) } else { w.appendNull() }
            w.append(text: f.failure.message.withoutNUL())
            w.append(text: f.raw.withoutNUL())
        }
        return w.finish()
    }

    /// The events stored for a batch (to send them downstream again when a batch repeats).
    static func storedEvents(_ db: PostgresConnection, site: Int64, batch: Int64) async throws -> [HydratedEvent] {
        let rows = try await db.query("""
            SELECT event_id, received_at, message_id, type, name, user_id, anonymous_id, event_time, original_timestamp,
                   sent_at, visitor_hash, previous_visitor_hash, properties::text AS properties, traits::text AS traits, context::text AS context,
                   integrations::text AS integrations, enrichment::text AS enrichment, metric::text AS metric
            FROM hydration.events WHERE site_id = $1 AND batch_id = $2 ORDER BY event_id
            """, [site, batch]).rows
        func decode<T: Decodable>(_ type: T.Type, _ row: PostgresRow, _ column: String) throws -> T? {
            try row.string(column).map { try TributaryJSON.decode(T.self, from: Array($0.utf8)) }
        }
        func object(_ row: PostgresRow, _ column: String) throws -> [String: JSONValue]? {
            try row.string(column).flatMap { try JSONValue.parse(Array($0.utf8)).objectValue }
        }
        return try rows.map { row in
            var e = HydratedEvent(
                eventID: try row.int("event_id") ?? 0, messageID: try row.string("message_id") ?? "",
                type: EventType(rawValue: try row.string("type") ?? "") ?? .track,
                timestamp: try row.date("event_time") ?? Date(), receivedAt: try row.date("received_at") ?? Date(),
                visitorHash: try row.string("visitor_hash") ?? "",
                enrichment: try decode(HydratedEvent.Enrichment.self, row, "enrichment") ?? .init())
            e.previousVisitorHash = try row.string("previous_visitor_hash")
            e.name = try row.string("name")
            e.userID = try row.string("user_id")
            e.anonymousID = try row.string("anonymous_id")
            e.originalTimestamp = try row.string("original_timestamp")
            e.sentAt = try row.string("sent_at")
            e.properties = try object(row, "properties")
            e.traits = try object(row, "traits")
            e.context = try object(row, "context")
            e.integrations = try object(row, "integrations")
            e.metric = try decode(HydratedEvent.Metric.self, row, "metric")
            return e
        }
    }
}
