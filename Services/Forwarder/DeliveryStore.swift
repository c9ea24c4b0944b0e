import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of the forwarder's delivery state: delivered marks, the attempt log, retries
/// and dead letters.
enum DeliveryStore {
    /// The events of `events` not yet marked delivered to `sink`.
    static func undelivered(_ db: PostgresClient, sink: Int64, events: [ForwardEvent]) async throws -> [ForwardEvent] {
        guard !events.isEmpty else { return [] }
        let rows = try await db.query(undeliveredSQL, [sink, PostgresArray.ints(events.map(\.siteID)),
                                                       PostgresArray.ints(events.map(\.eventID))]).rows
        guard !rows.isEmpty else { return events }
        var done = Set<[Int64]>()
        for row in rows { done.insert([try row.int("site_id") ?? 0, try row.int("event_id") ?? 0]) }
        return events.filter { !done.contains([$0.siteID, $0.eventID]) }
    }

    /// The events (`$2` sites, `$3` event ids) already marked delivered to sink `$1`: one
    /// primary-key probe per event, whatever the statistics say. A plain join let the
    /// planner, with statistics from before a sink's first marks (`sink_id = $1` looked like
    /// no rows), scan every mark of every sink once per event: each request slower than the
    /// last, until the next ANALYZE.
    static let undeliveredSQL = """
        SELECT x.s AS site_id, x.e AS event_id FROM unnest($2::bigint[], $3::bigint[]) AS x(s, e)
        CROSS JOIN LATERAL (SELECT 1 FROM forwarder.deliveries d
                            WHERE d.site_id = x.s AND d.sink_id = $1 AND d.event_id = x.e LIMIT 1) AS delivered
        """

    /// Marks events delivered (once: a second mark is ignored).
    static func markDelivered(_ tx: PostgresConnection, sink: Int64, events: [ForwardEvent], attempts: Int) async throws {
        guard !events.isEmpty else { return }
        try await tx.query("""
            INSERT INTO forwarder.deliveries (site_id, sink_id, event_id, message_id, attempts)
            SELECT s, $1, e, m, $5 FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS x(s, e, m)
            ON CONFLICT DO NOTHING
            """, [sink, PostgresArray.ints(events.map(\.siteID)), PostgresArray.ints(events.map(\.eventID)),
                  PostgresArray.text(events.map(\.messageID)), attempts])
    }

    /// One attempt-log row per site of a request.
    static func recordAttempt(_ tx: PostgresConnection, sink: Int64, requestID: String, attempt: Int, startedAt: Date,
                              latencyMs: Int, status: Int?, outcome: String, error: String?,
                              events: [ForwardEvent]) async throws {
        for (site, group) in Dictionary(grouping: events, by: \.siteID) {
            try await tx.query("""
                INSERT INTO forwarder.attempts (site_id, sink_id, request_id, attempt, started_at, latency_ms, status,
                                                outcome, error, event_ids, message_ids)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::bigint[], $11::text[])
                """, [site, sink, requestID, attempt, startedAt, latencyMs, status, outcome, error,
                      PostgresArray.ints(group.map(\.eventID)), PostgresArray.text(group.map(\.messageID))])
        }
    }

    /// Parks events for a later attempt, one row per site.
    static func park(_ tx: PostgresConnection, sink: Int64, events: [ForwardEvent], attempts: Int, firstAttemptAt: Date,
                     nextAttemptAt: Date, status: Int?, error: String, response: String?) async throws {
        for (site, group) in Dictionary(grouping: events, by: \.siteID) {
            let text = "[" + group.map(\.storedText).joined(separator: ",") + "]"
            try await tx.query("""
                INSERT INTO forwarder.retries (site_id, sink_id, events, event_count, attempts, first_attempt_at,
                                               next_attempt_at, last_status, last_error, last_response)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                """, [site, sink, text, group.count, attempts, firstAttemptAt, nextAttemptAt, status, error, response])
        }
    }

    static func updateRetry(_ tx: PostgresConnection, site: Int64, retryID: Int64, attempts: Int, nextAttemptAt: Date,
                            status: Int?, error: String, response: String?) async throws {
        try await tx.query("""
            UPDATE forwarder.retries SET attempts = $3, next_attempt_at = $4, last_status = $5, last_error = $6,
                   last_response = $7 WHERE site_id = $1 AND retry_id = $2
            """, [site, retryID, attempts, nextAttemptAt, status, error, response])
    }

    static func deleteRetry(_ tx: PostgresConnection, site: Int64, retryID: Int64) async throws {
        try await tx.query("DELETE FROM forwarder.retries WHERE site_id = $1 AND retry_id = $2", [site, retryID])
    }

    /// Gives up on events: one dead letter each, with why.
    static func deadLetter(_ tx: PostgresConnection, sink: Int64, events: [ForwardEvent], reason: String, attempts: Int,
                           firstAttemptAt: Date, status: Int?, errors: [String], response: String?) async throws {
        guard !events.isEmpty else { return }
        try await tx.query("""
            INSERT INTO forwarder.dead_letters (site_id, sink_id, event_id, message_id, event, reason, attempts,
                                                first_attempt_at, last_status, last_error, last_response)
            SELECT s, $1, e, m, j, $6, $7, $8, $9, r, $10
            FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $11::text[]) AS x(s, e, m, j, r)
            """, [sink, PostgresArray.ints(events.map(\.siteID)), PostgresArray.ints(events.map(\.eventID)),
                  PostgresArray.text(events.map(\.messageID)), PostgresArray.text(events.map(\.storedText)), reason,
                  attempts, firstAttemptAt, status, response, PostgresArray.text(errors)])
    }

    /// Gives claimed retries back untried: due again now.
    static func unclaim(_ db: PostgresClient, _ retries: [Retry]) async throws {
        guard !retries.isEmpty else { return }
        try await db.query("""
            UPDATE forwarder.retries r SET next_attempt_at = now() FROM unnest($1::bigint[], $2::bigint[]) AS x(s, i)
            WHERE r.site_id = x.s AND r.retry_id = x.i
            """, [PostgresArray.ints(retries.map(\.site)), PostgresArray.ints(retries.map(\.id))])
    }

    /// A parked group of events, claimed for an attempt.
    struct Retry: Sendable {
        var site: Int64
        var id: Int64
        var attempts: Int
        var firstAttemptAt: Date
        var events: [ForwardEvent]
    }

    /// Claims up to `limit` due retries of `sink` for `leaseSeconds` (so two instances
    /// never take the same row at once; a crashed claimer's rows come due again).
    static func claimRetries(_ db: PostgresClient, sink: Int64, limit: Int, leaseSeconds: Double) async throws -> [Retry] {
        let rows = try await db.query("""
            UPDATE forwarder.retries r SET next_attempt_at = now() + make_interval(secs => $3)
            FROM (SELECT site_id, retry_id FROM forwarder.retries WHERE sink_id = $1 AND next_attempt_at <= now()
                  ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
            WHERE r.site_id = due.site_id AND r.retry_id = due.retry_id
            RETURNING r.site_id, r.retry_id, r.attempts, r.first_attempt_at, r.events
            """, [sink, limit, leaseSeconds]).rows
        return try rows.compactMap { row in
            guard let site = try row.int("site_id"), let id = try row.int("retry_id"), let text = try row.string("events"),
                  case .array(let items)? = try? JSONValue.parse(Array(text.utf8)) else { return nil }
            let share = text.utf8.count / max(items.count, 1)
            let events = items.compactMap { item -> ForwardEvent? in
                guard var o = item.objectValue else { return nil }
                o["siteId"] = nil
                var event = ForwardEvent(object: o, siteID: site)
                event?.approximateBytes = share
                return event
            }
            return Retry(site: site, id: id, attempts: Int(try row.int("attempts") ?? 1),
                         firstAttemptAt: try row.date("first_attempt_at") ?? Date(), events: events)
        }
    }
}
