import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of the hydration schema. A turn's statements take the rows of several sites at
/// once (one array parameter per column, the site among them), so their number does not
/// grow with the sites a turn holds; rows go in (site, key) order, so two instances that
/// write the same keys lock them in the same order and cannot deadlock on them.
struct HydrationStore: Sendable {
    /// A site's batch.
    struct SiteBatch: Hashable, Comparable {
        var site: Int64
        var batch: Int64
        static func < (a: Self, b: Self) -> Bool { (a.site, a.batch) < (b.site, b.batch) }
    }

    /// A site's message id, user id or other text key.
    struct SiteKey: Hashable, Comparable {
        var site: Int64
        var key: String
        static func < (a: Self, b: Self) -> Bool { (a.site, a.key) < (b.site, b.key) }
    }

    /// One rejected event: its batch, position, reason and raw text.
    struct Failure {
        var site: Int64
        var batch: Int64
        var receivedAt: Date
        var position: Int
        var failure: ValidationFailure
        var raw: String
    }

    /// One applied batch's counts for its ledger row.
    struct Counts {
        var site: Int64
        var batch: Int64
        var received: Int
        var stored: Int
        var rejected: Int
        var duplicate: Int
        /// Events routed per queue.
        var routed: [String: Int]
        /// The ids of the batch's stored events lie in this range (`nil`: none stored).
        var eventIDs: ClosedRange<Int64>?
    }

    /// Claims the batches in the ledger; returns those claimed now. A batch applied before
    /// is not returned (one being applied by another instance is waited for, then not returned).
    static func claim(_ tx: PostgresConnection, batches: [SiteBatch]) async throws -> Set<SiteBatch> {
        let sorted = batches.sorted()
        let rows = try await tx.query("""
            INSERT INTO hydration.ledger (site_id, batch_id) SELECT s, b FROM unnest($1::bigint[], $2::bigint[]) AS x(s, b)
            ON CONFLICT DO NOTHING RETURNING site_id, batch_id
            """, [PostgresArray.binary(int8: sorted.map(\.site)), PostgresArray.binary(int8: sorted.map(\.batch))]).rows
        return Set(try rows.compactMap { row in
            guard let site = try row.int("site_id"), let batch = try row.int("batch_id") else { return nil }
            return SiteBatch(site: site, batch: batch)
        })
    }

    /// Records the message ids (each with its batch and receipt time); returns those that
    /// are new, or were last seen before the window.
    static func firstSeen(_ tx: PostgresConnection, rows: [(site: Int64, messageID: String, receivedAt: Date, batch: Int64)],
                          windowDays: Int) async throws -> Set<SiteKey> {
        guard !rows.isEmpty else { return [] }
        let sorted = rows.sorted { ($0.site, $0.messageID) < ($1.site, $1.messageID) }
        let result = try await tx.query("""
            INSERT INTO hydration.message_ids (site_id, message_id, first_seen, batch_id)
            SELECT s, m, t, b FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[]) AS x(s, m, t, b)
            ON CONFLICT (site_id, message_id) DO UPDATE SET first_seen = EXCLUDED.first_seen, batch_id = EXCLUDED.batch_id
            WHERE hydration.message_ids.first_seen < EXCLUDED.first_seen - make_interval(days => $5::int)
            RETURNING site_id, message_id
            """, [PostgresArray.binary(int8: sorted.map(\.site)), PostgresArray.binary(text: sorted.map(\.messageID)),
                  PostgresArray.binary(timestamptz: sorted.map(\.receivedAt)),
                  PostgresArray.binary(int8: sorted.map(\.batch)), windowDays]).rows
        return Set(try result.compactMap { row in
            guard let site = try row.int("site_id"), let id = try row.string("message_id") else { return nil }
            return SiteKey(site: site, key: id)
        })
    }

    /// Fills in the ledger rows' counts.
    static func recordCounts(_ tx: PostgresConnection, rows: [Counts]) async throws {
        guard !rows.isEmpty else { return }
        let routed = rows.map { JSONValue.object($0.routed.mapValues { .int(Int64($0)) }).jsonText }
        // No event id is 0 (ids carry their time), so 0 stands for "no range" in the arrays.
        try await tx.query("""
            UPDATE hydration.ledger l SET events_received = x.r, events_stored = x.s, events_rejected = x.j,
                   events_duplicate = x.d, routed = x.a::jsonb, first_event_id = nullif(x.lo, 0), last_event_id = nullif(x.hi, 0)
            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[],
                        $8::bigint[], $9::bigint[])
                 AS x(site, b, r, s, j, d, a, lo, hi)
            WHERE l.site_id = x.site AND l.batch_id = x.b
            """, [PostgresArray.binary(int8: rows.map(\.site)), PostgresArray.binary(int8: rows.map(\.batch)),
                  PostgresArray.binary(int8: rows.map { Int64($0.received) }), PostgresArray.binary(int8: rows.map { Int64($0.stored) }),
                  PostgresArray.binary(int8: rows.map { Int64($0.rejected) }),
                  PostgresArray.binary(int8: rows.map { Int64($0.duplicate) }), PostgresArray.binary(text: routed),
                  PostgresArray.binary(int8: rows.map { $0.eventIDs?.lowerBound ?? 0 }),
                  PostgresArray.binary(int8: rows.map { $0.eventIDs?.upperBound ?? 0 })])
    }

    /// Saves the identify traits and alias links of a turn's events (one statement each).
    static func saveIdentities(_ tx: PostgresConnection, events: [(site: Int64, event: Event, time: Date)]) async throws {
        struct TraitsKey: Hashable, Comparable {
            var user: SiteKey
            var time: Date
            static func < (a: Self, b: Self) -> Bool { (a.user, a.time) < (b.user, b.time) }
        }
        var traits: [TraitsKey: [String: JSONValue]] = [:]
        var aliases: [SiteKey: String] = [:]
        for (site, event, time) in events {
            if event.type == .identify, let user = event.userId, let values = event.traits, !values.isEmpty {
                let key = TraitsKey(user: SiteKey(site: site, key: user), time: time)
                for (k, v) in values { traits[key, default: [:]][k] = v }
            }
            if event.type == .alias, let user = event.userId, let previous = event.previousId {
                let key = SiteKey(site: site, key: previous)
                if aliases[key] == nil { aliases[key] = user }
            }
        }
        if !traits.isEmpty {
            let rows = traits.sorted { $0.key < $1.key }
            try await tx.query("""
                INSERT INTO hydration.user_traits (site_id, user_id, valid_from, traits)
                SELECT s, u, t, j::jsonb FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[]) AS x(s, u, t, j)
                ON CONFLICT (site_id, user_id, valid_from) DO UPDATE SET traits = hydration.user_traits.traits || EXCLUDED.traits
                """, [PostgresArray.binary(int8: rows.map(\.key.user.site)), PostgresArray.binary(text: rows.map(\.key.user.key)),
                      PostgresArray.binary(timestamptz: rows.map(\.key.time)),
                      PostgresArray.binary(text: rows.map { JSONValue.object($0.value).withoutNUL().jsonText })])
        }
        if !aliases.isEmpty {
            let rows = aliases.sorted { $0.key < $1.key }
            try await tx.query("""
                INSERT INTO hydration.aliases (site_id, previous_id, user_id)
                SELECT s, p, u FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(s, p, u) ON CONFLICT DO NOTHING
                """, [PostgresArray.binary(int8: rows.map(\.key.site)), PostgresArray.binary(text: rows.map(\.key.key)),
                      PostgresArray.binary(text: rows.map(\.value))])
        }
    }

    /// The canonical user of each (site, id) (through alias links).
    static func canonicalUsers(_ tx: PostgresConnection, ids: Set<SiteKey>) async throws -> [SiteKey: String] {
        guard !ids.isEmpty else { return [:] }
        let keys = ids.sorted()
        let rows = try await tx.query("""
            SELECT a.site_id, a.previous_id, a.user_id FROM unnest($1::bigint[], $2::text[]) AS x(s, p)
            JOIN hydration.aliases a ON a.site_id = x.s AND a.previous_id = x.p
            """, [PostgresArray.binary(int8: keys.map(\.site)), PostgresArray.binary(text: keys.map(\.key))]).rows
        var map: [SiteKey: String] = [:]
        for row in rows {
            if let site = try row.int("site_id"), let p = try row.string("previous_id"), let u = try row.string("user_id") {
                map[SiteKey(site: site, key: p)] = u
            }
        }
        return map
    }

    /// Every traits row of the (site, user)s, oldest first, up to `until`.
    static func traitHistory(_ tx: PostgresConnection, users: Set<SiteKey>,
                             until: Date) async throws -> [SiteKey: [(Date, [String: JSONValue])]] {
        guard !users.isEmpty else { return [:] }
        let keys = users.sorted()
        let rows = try await tx.query("""
            SELECT t.site_id, t.user_id, t.valid_from, t.traits::text AS traits
            FROM unnest($1::bigint[], $2::text[]) AS x(s, u)
            JOIN hydration.user_traits t ON t.site_id = x.s AND t.user_id = x.u
            WHERE t.valid_from <= $3
            ORDER BY t.site_id, t.user_id, t.valid_from
            """, [PostgresArray.binary(int8: keys.map(\.site)), PostgresArray.binary(text: keys.map(\.key)), until]).rows
        var history: [SiteKey: [(Date, [String: JSONValue])]] = [:]
        for row in rows {
            guard let site = try row.int("site_id"), let user = try row.string("user_id"), let from = try row.date("valid_from"),
                  let text = try row.string("traits"),
                  let traits = try? JSONValue.parse(Array(text.utf8)).objectValue else { continue }
            history[SiteKey(site: site, key: user), default: []].append((from, traits))
        }
        return history
    }

    static let copyEvents = """
        COPY hydration.events (site_id, event_id, received_at, batch_id, message_id, type, name, user_id, anonymous_id,
            event_time, original_timestamp, sent_at, visitor_hash, properties, traits, context, enrichment, metric, flags,
            previous_visitor_hash, integrations)
        FROM STDIN (FORMAT binary)
        """

    /// Appends one stored event's row of ``copyEvents`` to `w`.
    static func appendEvent(_ w: inout PostgresCopyWriter, site: Int64, batch: Int64, event e: borrowing HydratedEvent,
                            objects: borrowing HydratedEvent.EncodedObjects, flags: [String]) {
        func text(_ s: String?, _ w: inout PostgresCopyWriter) {
            if let s { w.append(text: s.withoutNUL()) } else { w.appendNull() }
        }
        func json(_ bytes: [UInt8]?, _ w: inout PostgresCopyWriter) {
            if let bytes { w.append(jsonbBytes: bytes) } else { w.appendNull() }
        }
        w.beginRow(columns: 21)
        w.append(int: site)
        w.append(int: e.eventID)
        w.append(timestamp: e.receivedAt)
        w.append(int: batch)
        text(e.messageID, &w)
        text(e.type.rawValue, &w)
        text(e.name, &w)
        text(e.userID, &w)
        text(e.anonymousID, &w)
        w.append(timestamp: e.timestamp)
        text(e.originalTimestamp, &w)
        text(e.sentAt, &w)
        text(e.visitorHash, &w)
        json(objects.properties, &w)
        json(objects.traits, &w)
        json(objects.context, &w)
        w.append(jsonbBytes: objects.enrichment)
        json(objects.metric, &w)
        w.append(text: flags.joined(separator: ","))
        text(e.previousVisitorHash, &w)
        json(objects.integrations, &w)
    }

    static let copyFailedEvents = """
        COPY hydration.failed_events (site_id, batch_id, position, received_at, rule, field, reason, raw)
        FROM STDIN (FORMAT binary)
        """

    static func copyFailures(_ failures: [Failure]) -> [UInt8] {
        var w = PostgresCopyWriter()
        for f in failures {
            w.beginRow(columns: 8)
            w.append(int: f.site)
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
            SELECT e.event_id, e.received_at, e.message_id, e.type, e.name, e.user_id, e.anonymous_id, e.event_time,
                   e.original_timestamp, e.sent_at, e.visitor_hash, e.previous_visitor_hash, e.properties::text AS properties,
                   e.traits::text AS traits, e.context::text AS context, e.integrations::text AS integrations,
                   e.enrichment::text AS enrichment, e.metric::text AS metric
            FROM hydration.ledger l JOIN hydration.events e ON \(HydrationLedgerSQL.events)
            WHERE l.site_id = $1 AND l.batch_id = $2 ORDER BY e.event_id
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
