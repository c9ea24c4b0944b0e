import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// Follows one event through every schema and queue (read-only): the raw batch it came in,
/// what hydration made of it, whether the aggregator applied its batch, and each sink's
/// attempts and final state. Where a stage has no trace of it, looks for its batch in that
/// stage's queue (waiting, in flight, or held by a dead consumer).
struct EventTracer: Sendable {
    let postgres: PostgresClient
    let redis: RedisConnection
    let searchDays: Int
    let maxQueueScan: Int

    /// Why a trace could not be made (the message says what to do).
    struct Failure: Error, CustomStringConvertible {
        var status: Int
        var description: String
    }

    /// Where the event was found first: its site, batch and, when hydration has it, its row.
    struct Found {
        var site: Int64
        var batch: Int64
        var messageID: String?
        var stored: PostgresRow?
        var rejected: PostgresRow?
    }

    /// Traces `query` (a message id, or an event id in digits) within `site`, or in any site.
    func trace(_ query: String, site: Int64?) async throws -> EventTrace {
        guard !query.isEmpty, query.utf8.count <= 1000 else {
            throw Failure(status: 400, description: "the id must be 1-1000 characters")
        }
        let found = try await locate(query, site: site)
        var trace = EventTrace(query: query, siteID: found.site, messageID: found.messageID,
                               eventID: try found.stored?.int("event_id"), batchID: found.batch)
        let raw = try await postgres.query("""
            SELECT received_at, event_count, payload FROM collector.raw_batches WHERE site_id = $1 AND batch_id = $2
            """, [found.site, found.batch]).rows.first
        let receivedAt = try raw?.date("received_at") ?? found.stored?.date("received_at") ?? found.rejected?.date("received_at")
        if let raw {
            let rejectedAt = try found.rejected?.int("position")
            let position = Self.position(of: found.messageID, in: try raw.string("payload") ?? "") ?? rejectedAt.map(Int.init)
            trace.stages.append(.init(name: "received", state: .done, at: receivedAt,
                                      summary: "batch \(found.batch) of \(try raw.int("event_count") ?? 0) event(s)"
                                          + (position.map { ", position \($0)" } ?? ""),
                                      detail: position.map { ["position": .int(Int64($0))] } ?? [:]))
        } else {
            trace.stages.append(.init(name: "received", state: .done, at: receivedAt,
                                      summary: "batch \(found.batch) (the raw batch is no longer kept)"))
        }
        let hydrated = try await hydrationStage(found, trace: &trace)
        guard let stored = found.stored, hydrated else { return trace }
        let routed = try Self.routed(try await postgres.query(
            "SELECT routed::text AS r FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2",
            [found.site, found.batch]).rows.first?.string("r"))
        try await aggregatorStage(found, stored: stored, routed: routed, trace: &trace)
        try await sinkStages(found, stored: stored, routed: routed, trace: &trace)
        return trace
    }

    // MARK: Finding the event

    private func locate(_ query: String, site: Int64?) async throws -> Found {
        let sites = "(SELECT site_id FROM collector.sites WHERE $1::bigint IS NULL OR site_id = $1)"
        var stored: [PostgresRow] = []
        if let id = Int64(query), id > 0 {
            stored = try await postgres.query("""
                SELECT * FROM hydration.events WHERE site_id IN \(sites) AND event_id = $2 LIMIT 2
                """, [site, id]).rows
        }
        if stored.isEmpty {
            // Through the dedup table, keyed by message id, to the batch that stored the event.
            stored = try await postgres.query("""
                SELECT e.* FROM hydration.message_ids m
                JOIN hydration.ledger l ON l.site_id = m.site_id AND l.batch_id = m.batch_id
                JOIN hydration.events e ON \(HydrationLedgerSQL.events) AND e.message_id = m.message_id
                WHERE m.site_id IN \(sites) AND m.message_id = $2 ORDER BY e.received_at LIMIT 10
                """, [site, query]).rows
        }
        let since = Date().addingTimeInterval(-Double(searchDays) * 86_400)
        if stored.isEmpty {
            // No dedup row (pruned with the retention, or rewritten when the id came back after the window): the recent events.
            stored = try await postgres.query("""
                SELECT * FROM hydration.events WHERE site_id IN \(sites) AND message_id = $2 AND received_at >= $3
                ORDER BY received_at LIMIT 10
                """, [site, query, since]).rows
        }
        let storedSites = Set(try stored.compactMap { try $0.int("site_id") })
        if storedSites.count > 1 {
            throw Failure(status: 409, description: "\(query) names events of sites \(storedSites.sorted().map(String.init).joined(separator: ", ")); give the site (--site)")
        }
        if let row = stored.first, let s = try row.int("site_id"), let batch = try row.int("batch_id") {
            return Found(site: s, batch: batch, messageID: try row.string("message_id"), stored: row)
        }
        // Not stored: rejected by hydration, or not hydrated yet (look in the raw batches).
        let needle = "%\"messageId\":" + Self.likeEscaped(JSONValue.string(query).jsonText) + "%"
        let rejected = try await postgres.query("""
            SELECT * FROM hydration.failed_events WHERE site_id IN \(sites) AND received_at >= $3 AND raw LIKE $2
            ORDER BY received_at LIMIT 1
            """, [site, needle, since]).rows
        if let row = rejected.first, let s = try row.int("site_id"), let batch = try row.int("batch_id") {
            return Found(site: s, batch: batch, messageID: query, rejected: row)
        }
        let raw = try await postgres.query("""
            SELECT site_id, batch_id FROM collector.raw_batches WHERE site_id IN \(sites) AND received_at >= $3 AND payload LIKE $2
            ORDER BY received_at LIMIT 1
            """, [site, needle, since]).rows
        if let row = raw.first, let s = try row.int("site_id"), let batch = try row.int("batch_id") {
            return Found(site: s, batch: batch, messageID: query)
        }
        throw Failure(status: 404, description: "no event with message id or event id \(query) in "
                      + (site.map { "site \($0)" } ?? "any site") + " (events without a dedup row and raw batches searched back \(searchDays) days, healthChecker.trace.searchDays)")
    }

    /// The position of the event with `messageID` in a raw batch's payload.
    static func position(of messageID: String?, in payload: String) -> Int? {
        guard let messageID, let value = try? JSONValue.parse(Array(payload.utf8)),
              case .array(let batch)? = value.objectValue?["batch"] else { return nil }
        return batch.firstIndex { $0.objectValue?["messageId"]?.stringValue == messageID }
    }

    static func likeEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
    }

    /// The ledger's `routed` column: events per queue.
    static func routed(_ text: String?) throws -> [String: Int64] {
        guard let text, let value = try? JSONValue.parse(Array(text.utf8)), let object = value.objectValue else { return [:] }
        return object.compactMapValues { if case .int(let n) = $0 { return n } else { return nil } }
    }

    // MARK: Stages

    /// Adds hydration's stage; true when the event was stored (later stages follow).
    private func hydrationStage(_ found: Found, trace: inout EventTrace) async throws -> Bool {
        let ledger = try await postgres.query("SELECT applied_at FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2",
                                              [found.site, found.batch]).rows.first
        let applied = try ledger?.date("applied_at")
        if let row = found.stored {
            let received = try row.date("received_at")
            trace.stages.append(.init(name: "hydration", state: .done, at: applied ?? received,
                                      summary: "stored as event \(try row.int("event_id") ?? 0): " + (try Self.describe(row)),
                                      detail: ["eventId": .int(try row.int("event_id") ?? 0),
                                               "eventTime": .string(ISO8601.format(try row.date("event_time") ?? Date()))]))
            return true
        }
        if let row = found.rejected {
            let rule = try row.string("rule") ?? "", field = try row.string("field") ?? ""
            trace.stages.append(.init(name: "hydration", state: .rejected, at: applied,
                                      summary: "rejected by rule \(rule)" + (field.isEmpty ? "" : " (field \(field))")
                                          + ": " + (try row.string("reason") ?? ""),
                                      detail: ["rule": .string(rule), "field": .string(field)]))
            return false
        }
        if ledger != nil {
            let first = try await postgres.query("""
                SELECT batch_id, first_seen FROM hydration.message_ids WHERE site_id = $1 AND message_id = $2
                """, [found.site, found.messageID ?? ""]).rows.first
            let summary = try first.map { "a copy of message id \(found.messageID ?? "") first seen in batch \(try $0.int("batch_id") ?? 0) at "
                + ISO8601.format(try $0.date("first_seen") ?? Date()) + " (deduplicated)" }
                ?? "the batch was applied but kept no row of this event (deduplicated, or its rows were dropped by retention)"
            trace.stages.append(.init(name: "hydration", state: .duplicate, at: applied, summary: summary))
            return false
        }
        let outbox = try await postgres.query("SELECT created_at FROM collector.outbox WHERE site_id = $1 AND batch_id = $2",
                                              [found.site, found.batch]).rows.first
        if let outbox {
            trace.stages.append(.init(name: "hydration", state: .queued, at: try outbox.date("created_at"),
                                      summary: "in the collector's outbox, not yet pushed to the hydrate queue (Redis unreachable?)"))
            return false
        }
        trace.stages.append(try await queueStage("hydration", queue: QueueName.hydrate, found: found))
        return false
    }

    private func aggregatorStage(_ found: Found, stored: PostgresRow, routed: [String: Int64], trace: inout EventTrace) async throws {
        let type = EventType(rawValue: try stored.string("type") ?? "")
        if type == .metric {
            trace.stages.append(.init(name: "aggregator", state: .skipped, summary: "metrics are not aggregated (they go to statsd sinks)"))
            return
        }
        guard (routed["aggregate"] ?? 0) > 0 else {
            trace.stages.append(.init(name: "aggregator", state: .skipped,
                                      summary: "not routed to aggregate (the site is store-only, or was when the batch was hydrated)"))
            return
        }
        guard let ledger = try await postgres.query("""
            SELECT applied_at, events_applied, events_ignored, events_late FROM aggregator.ledger WHERE site_id = $1 AND batch_id = $2
            """, [found.site, found.batch]).rows.first else {
            trace.stages.append(try await queueStage("aggregator", queue: QueueName.aggregate, found: found))
            return
        }
        let counted = try await postgres.query("""
            SELECT 1 FROM aggregator.visitor_events WHERE site_id = $1 AND visitor = $2 AND event_id = $3 LIMIT 1
            """, [found.site, try stored.string("visitor_hash") ?? "", try stored.int("event_id") ?? 0]).rows.isEmpty == false
        let summary: String
        if counted {
            summary = "batch applied; counted (visitor \((try stored.string("visitor_hash") ?? "").prefix(12))…)"
        } else if let type, [.identify, .alias, .group].contains(type) {
            summary = "batch applied; \(type.rawValue) events are not counted in statistics"
        } else {
            summary = "batch applied; not counted (older than aggregator.lateEventDays when it arrived)"
        }
        trace.stages.append(.init(name: "aggregator", state: .done, at: try ledger.date("applied_at"), summary: summary,
                                  detail: ["counted": .bool(counted)]))
    }

    private func sinkStages(_ found: Found, stored: PostgresRow, routed: [String: Int64], trace: inout EventTrace) async throws {
        let eventID = try stored.int("event_id") ?? 0
        var ids = Set(routed.compactMap { key, n -> Int64? in
            guard n > 0, key.hasPrefix("forward:") else { return nil }
            return Int64(key.dropFirst("forward:".count))
        })
        for row in try await postgres.query("""
            SELECT sink_id FROM forwarder.deliveries WHERE site_id = $1 AND event_id = $2
            UNION SELECT sink_id FROM forwarder.dead_letters WHERE site_id = $1 AND event_id = $2
            """, [found.site, eventID]).rows {
            if let id = try row.int("sink_id") { ids.insert(id) }
        }
        let sinks = try await postgres.query("""
            SELECT \(SinkRules.columns), disabled_at FROM forwarder.sinks WHERE sink_id = ANY($1::bigint[]) ORDER BY sink_id
            """, [PostgresArray.ints(ids.sorted())]).rows
        for sink in sinks {
            guard let id = try sink.int("sink_id") else { continue }
            trace.stages.append(try await sinkStage(found, stored: stored, eventID: eventID, sink: sink, id: id,
                                                    routedBatch: (routed[QueueName.forward(sinkID: id)] ?? 0) > 0))
        }
    }

    private func sinkStage(_ found: Found, stored: PostgresRow, eventID: Int64, sink: PostgresRow, id: Int64,
                           routedBatch: Bool) async throws -> EventTrace.Stage {
        let name = "sink \(try sink.string("name") ?? String(id))"
        let storedAt = try stored.date("received_at") ?? Date()
        let attempts = try await postgres.query("""
            SELECT started_at, attempt, status, outcome, latency_ms, error FROM forwarder.attempts
            WHERE site_id = $1 AND sink_id = $2 AND started_at >= $3 AND event_ids @> ARRAY[$4::bigint]
            ORDER BY started_at LIMIT 50
            """, [found.site, id, storedAt.addingTimeInterval(-60), eventID]).rows
        var detail: [String: JSONValue] = ["sinkId": .int(id), "type": .string(try sink.string("type") ?? "")]
        detail["attempts"] = .array(try attempts.map { a in
            var o: [String: JSONValue] = ["at": .string(ISO8601.format(try a.date("started_at") ?? Date())),
                                          "outcome": .string(try a.string("outcome") ?? "")]
            if let s = try a.int("status") { o["status"] = .int(s) }
            if let l = try a.int("latency_ms") { o["latencyMs"] = .int(l) }
            if let e = try a.string("error") { o["error"] = .string(e) }
            return .object(o)
        })
        if let d = try await postgres.query("""
            SELECT delivered_at, attempts FROM forwarder.deliveries WHERE site_id = $1 AND sink_id = $2 AND event_id = $3
            """, [found.site, id, eventID]).rows.first {
            return .init(name: name, state: .done, at: try d.date("delivered_at"),
                         summary: "delivered after \(try d.int("attempts") ?? 1) attempt(s)", detail: detail)
        }
        if let dl = try await postgres.query("""
            SELECT dead_at, attempts, reason, last_status, last_error FROM forwarder.dead_letters
            WHERE site_id = $1 AND sink_id = $2 AND event_id = $3 ORDER BY dead_at DESC LIMIT 1
            """, [found.site, id, eventID]).rows.first {
            let status = try dl.int("last_status").map { ", last status \($0)" } ?? ""
            return .init(name: name, state: .deadLettered, at: try dl.date("dead_at"),
                         summary: "dead-lettered after \(try dl.int("attempts") ?? 0) attempt(s): \(try dl.string("reason") ?? "")\(status)",
                         detail: detail)
        }
        if let r = try await postgres.query("""
            SELECT attempts, next_attempt_at, last_status, last_error FROM forwarder.retries
            WHERE site_id = $1 AND sink_id = $2 AND events ~ $3 LIMIT 1
            """, [found.site, id, "\"eventId\":\(eventID)[^0-9]"]).rows.first {
            let why = try r.int("last_status").map { "status \($0)" } ?? (try r.string("last_error") ?? "failed")
            return .init(name: name, state: .retrying, at: try attempts.last?.date("started_at"),
                         summary: "\(try r.int("attempts") ?? 0) attempt(s) failed (\(why)); next attempt at "
                             + ISO8601.format(try r.date("next_attempt_at") ?? Date()), detail: detail)
        }
        if try sink.date("disabled_at") != nil {
            return .init(name: name, state: .skipped, summary: "the sink is disabled; nothing was delivered", detail: detail)
        }
        let rule = try SinkRules.rule(from: sink)
        let type = EventType(rawValue: try stored.string("type") ?? "") ?? .track
        let integrations = (try stored.string("integrations")).flatMap { try? JSONValue.parse(Array($0.utf8)).objectValue }
        let eventName = try stored.string("name")
        if !routedBatch || rule?.matches(site: found.site, type: type, name: eventName, integrations: integrations) != true {
            return .init(name: name, state: .skipped, summary: "not routed: the sink's rules do not take this event", detail: detail)
        }
        var stage = try await queueStage(name, queue: QueueName.forward(sinkID: id), found: found)
        stage.detail.merge(detail) { a, _ in a }
        return stage
    }

    /// The stage of an event whose batch a stage has not applied: where the batch is in that
    /// stage's queue, or missing (with the replay command that fills the gap).
    private func queueStage(_ name: String, queue: String, found: Found) async throws -> EventTrace.Stage {
        let locator = QueueLocator(redis: redis, maxScan: maxQueueScan)
        let replay = "collector replay --site \(found.site) --batches \(found.batch)"
        switch try await locator.find(queue: queue, site: found.site, batch: found.batch) {
        case .waiting(let ahead):
            return .init(name: name, state: .queued, summary: "waiting in \(queue) (\(ahead) item(s) of the site ahead of it)",
                         detail: ["queue": .string(queue), "ahead": .int(Int64(ahead))])
        case .inFlight(let consumer, let alive):
            return alive
                ? .init(name: name, state: .inFlight, summary: "being worked on by \(consumer) (taken from \(queue))",
                        detail: ["queue": .string(queue), "consumer": .string(consumer)])
                : .init(name: name, state: .orphaned,
                        summary: "held by \(consumer), whose lease expired (a dead consumer); orphan recovery puts it back in \(queue)",
                        detail: ["queue": .string(queue), "consumer": .string(consumer)])
        case .notFound(let scanned):
            return .init(name: name, state: .missing,
                         summary: "not applied and not in \(queue)" + (scanned ? "" : " (its first \(maxQueueScan) items were searched)")
                             + "; likely lost there: \(replay)",
                         detail: ["queue": .string(queue), "replay": .string(replay)])
        }
    }

    /// A short description of a stored event: type, name, place, client, source.
    static func describe(_ row: PostgresRow) throws -> String {
        var parts = [try row.string("type") ?? "event"]
        if let name = try row.string("name"), !name.isEmpty { parts[0] += " \"\(name)\"" }
        let e = (try row.string("enrichment")).flatMap { try? JSONValue.parse(Array($0.utf8)).objectValue } ?? [:]
        func s(_ k: String) -> String? { e[k]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
        if let country = s("country") { parts.append(country + (s("city").map { " (\($0))" } ?? "")) }
        let client = [s("browser"), s("os").map { "on " + $0 }, s("device").map { "(\($0))" }].compactMap { $0 }
        if !client.isEmpty { parts.append(client.joined(separator: " ")) }
        if let source = s("source") ?? s("referrerHost") { parts.append("source " + source) }
        if case .bool(true)? = e["isBot"] { parts.append("bot") }
        if let flags = try row.string("flags"), !flags.isEmpty { parts.append("flags: " + flags) }
        return parts.joined(separator: "; ")
    }
}
