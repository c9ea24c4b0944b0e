import Foundation
import Logging
import Metrics
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// Consumes the `hydrate` queue: for each raw batch, in one transaction, claims the batch
/// in the ledger, validates every event (failures recorded with their rule and field),
/// drops duplicates within the window, saves identify traits and alias links, enriches
/// and stores the events with COPY, and records the counts; then sends the events on.
///
/// A batch already in the ledger is not applied again: its stored events are sent again
/// instead (downstream is idempotent too). Owns the `hydration` schema.
struct HydrationHandler: QueueHandler {
    let postgres: PostgresClient
    let aggregate: ReliableQueue
    let salt: VisitorSalt
    let validator: EventValidator
    let enricher: EventEnricher
    let partitions: EventPartitions
    let ids: SnowflakeID
    let dedupWindowDays: Int
    let logger: Logger
    let accepted = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "stored")])
    let rejected = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "invalid")])
    let duplicates = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "duplicate")])

    /// What applying one batch produced.
    struct Outcome: Sendable {
        var events: [HydratedEvent]
        var received = 0
        var invalid = 0
        var duplicate = 0
        var repeated = false
    }

    func handle(_ items: [QueueItem]) async throws {
        var batches: [(RawBatchMessage, RawPayload)] = []
        for item in items {
            guard let message = try? TributaryJSON.decode(RawBatchMessage.self, from: item.payload),
                  let payload = RawPayload.parse(message.payload) else {
                try await recordBadMessage(item)
                continue
            }
            batches.append((message, payload))
        }
        guard !batches.isEmpty else { return }
        let outcomes = try await apply(batches)
        for ((message, _), outcome) in zip(batches, outcomes) {
            try await route(outcome.events, message: message)
        }
    }

    /// Applies batches (one site's turn) in one transaction, each exactly once: one
    /// commit for all of them. A missing partition is created and the whole retried once.
    func apply(_ batches: [(RawBatchMessage, RawPayload)]) async throws -> [Outcome] {
        var fetched: [[UInt8]] = []
        for (message, _) in batches { fetched.append(try await salt.salt(for: message.receivedAt)) }
        let salts = fetched
        let work = { @Sendable () async throws -> [Outcome] in
            try await postgres.withTransaction { tx -> [Outcome] in
                var outcomes: [Outcome] = []
                for ((message, payload), salt) in zip(batches, salts) {
                    outcomes.append(try await applyOnce(tx, message, payload: payload, salt: salt))
                }
                return outcomes
            }
        }
        let outcomes: [Outcome]
        do {
            outcomes = try await work()
        } catch let error as PostgresError where error.sqlState == "23514" {
            for (message, _) in batches { try await partitions.ensure(around: message.receivedAt) }
            outcomes = try await work()
        }
        for outcome in outcomes where !outcome.repeated {
            accepted.increment(by: outcome.events.count)
            rejected.increment(by: outcome.invalid)
            duplicates.increment(by: outcome.duplicate)
        }
        return outcomes
    }

    private func applyOnce(_ tx: PostgresConnection, _ message: RawBatchMessage, payload: RawPayload,
                           salt: [UInt8]) async throws -> Outcome {
        let site = message.siteID
        let batch = message.batchID
        do {
            guard try await HydrationStore.claim(tx, site: site, batch: batch) else {
                var repeated = Outcome(events: try await HydrationStore.storedEvents(tx, site: site, batch: batch))
                repeated.repeated = true
                return repeated
            }
            var outcome = Outcome(events: [], received: payload.batch.count)
            var failures: [(position: Int, failure: ValidationFailure, raw: String)] = []
            var valid: [EventEnricher.Input] = []
            var seenInBatch: Set<String> = []
            for (position, value) in payload.batch.enumerated() {
                do throws(ValidationFailure) {
                    let event = try validator.validate(value)
                    let messageID = event.messageId ?? "\(batch)-\(position)"
                    guard seenInBatch.insert(messageID).inserted else {
                        outcome.duplicate += 1
                        continue
                    }
                    valid.append(.init(event: event, position: position, messageID: messageID, batchSentAt: payload.sentAt))
                } catch {
                    let raw = value.jsonText
                    failures.append((position, error, raw))
                }
            }
            let fresh = try await HydrationStore.firstSeen(tx, site: site, batch: batch, messageIDs: valid.map(\.messageID),
                                                           at: message.receivedAt, windowDays: dedupWindowDays)
            let kept = valid.filter { fresh.contains($0.messageID) }
            outcome.duplicate += valid.count - kept.count
            let times = kept.map { enricher.clock.resolve(timestamp: $0.event.timestamp, sentAt: $0.event.sentAt ?? $0.batchSentAt,
                                                         receivedAt: message.receivedAt).0 }
            try await HydrationStore.saveIdentities(tx, site: site, events: Array(zip(kept.map(\.event), times)))
            let traitsOf = try await traitsLookup(tx, site: site, kept: kept, times: times)
            var hydrated: [(HydratedEvent, [String])] = []
            for (input, time) in zip(kept, times) {
                hydrated.append(enricher.enrich(input, eventID: ids.next(), message: message, salt: salt,
                                                traits: traitsOf(input.event, time)))
            }
            if !hydrated.isEmpty {
                try await tx.copy(HydrationStore.copyEvents, data: try HydrationStore.copyData(site: site, batch: batch, events: hydrated))
            }
            if !failures.isEmpty {
                try await tx.copy("""
                    COPY hydration.failed_events (site_id, batch_id, position, received_at, rule, field, reason, raw)
                    FROM STDIN (FORMAT binary)
                    """, data: HydrationStore.copyFailures(site: site, batch: batch, receivedAt: message.receivedAt,
                                                           failures: failures))
            }
            outcome.events = hydrated.map(\.0)
            outcome.invalid = failures.count
            let routed = #"{"aggregate":\#(outcome.events.filter { $0.type != .metric }.count)}"#
            try await tx.query("""
                UPDATE hydration.ledger SET events_received = $3, events_stored = $4, events_rejected = $5,
                       events_duplicate = $6, routed = $7::jsonb
                WHERE site_id = $1 AND batch_id = $2
                """, [site, batch, outcome.received, outcome.events.count, outcome.invalid, outcome.duplicate,
                      PostgresValue.json(routed)])
            return outcome
        }
    }

    /// Traits as of each event's time, folding the user's identify calls up to then.
    private func traitsLookup(_ tx: PostgresConnection, site: Int64, kept: [EventEnricher.Input],
                              times: [Date]) async throws -> (Event, Date) -> [String: JSONValue]? {
        let userIDs = Set(kept.compactMap(\.event.userId))
        guard !userIDs.isEmpty, let latest = times.max() else { return { _, _ in nil } }
        let canonical = try await HydrationStore.canonicalUsers(tx, site: site, ids: userIDs)
        let users = Set(userIDs.map { canonical[$0] ?? $0 })
        let history = try await HydrationStore.traitHistory(tx, site: site, users: users, until: latest)
        return { event, time in
            guard let id = event.userId, let rows = history[canonical[id] ?? id] else { return nil }
            var traits: [String: JSONValue] = [:]
            for (from, values) in rows where from <= time {
                for (k, v) in values { traits[k] = v }
            }
            return traits.isEmpty ? nil : traits
        }
    }

    /// Sends the events on: everything but metrics to `aggregate` (metrics go to statsd
    /// sinks only, which the forwarder adds).
    func route(_ events: [HydratedEvent], message: RawBatchMessage) async throws {
        let forAggregate = events.filter { $0.type != .metric }
        guard !forAggregate.isEmpty else { return }
        let out = HydratedBatchMessage(batchID: message.batchID, siteID: message.siteID, events: forAggregate)
        try await aggregate.push(try TributaryJSON.encode(out), site: String(message.siteID))
    }

    private func recordBadMessage(_ item: QueueItem) async throws {
        logger.error("hydrate queue item is not a raw batch; recorded in hydration.bad_messages",
                     metadata: ["site.id": "\(item.site)"])
        try await postgres.query("INSERT INTO hydration.bad_messages (site_id, reason, raw) VALUES ($1, $2, $3)", [
            Int64(item.site) ?? 0, "not a raw batch message (docs/queues.md, hydrate)",
            String(decoding: item.payload, as: UTF8.self).withoutNUL(),
        ])
    }
}

/// The body of a raw batch as the collector normalised it.
struct RawPayload: Sendable {
    var batch: [JSONValue]
    var sentAt: String?
    var context: [String: JSONValue]?

    /// Reads `{"batch":[…],"sentAt":…,"context":…}`; `nil` if the text is not that shape.
    static func parse(_ text: String) -> RawPayload? {
        guard let value = try? JSONValue.parse(Array(text.utf8)), let object = value.objectValue,
              case .array(let batch)? = object["batch"] else { return nil }
        return RawPayload(batch: batch, sentAt: object["sentAt"]?.stringValue, context: object["context"]?.objectValue)
    }
}
