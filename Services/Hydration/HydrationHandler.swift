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
    let visitorContinuitySeconds: Double
    let logger: Logger
    /// The routing rules as of now (sinks and store-only sites); read once per turn.
    /// Throws while the rules are unknown, so no event is routed without them.
    var routing: @Sendable () throws -> EventRouter = { EventRouter(rules: [], isStoreOnly: { _ in false }) }
    /// Where each applied batch's result goes (the health-checker's job expectations).
    var jobs: JobReporter?
    /// A batch of at least this many events that keeps none of them is reported as an anomaly.
    var allRejectedMinEvents = 100
    let accepted = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "stored")])
    let rejected = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "invalid")])
    let duplicates = Counter(label: "tributary_hydration_events_total", dimensions: [("outcome", "duplicate")])

    /// The salts of a batch's visitor hashes: its UTC day's, and yesterday's shortly after midnight.
    struct Salts: Sendable {
        var current: [UInt8]
        var previous: [UInt8]?
    }

    /// What applying one batch produced.
    struct Outcome: Sendable {
        var events: [HydratedEvent]
        var received = 0
        var invalid = 0
        var duplicate = 0
        var repeated = false
        /// Each event's objects as JSON, in the order of `events`, written once for the COPY
        /// and reused for the queue messages (empty for a repeated batch, whose events are
        /// written when routed).
        var objects: [HydratedEvent.EncodedObjects] = []
        /// Each event's `aggregate` message member (``HydratedEvent/statisticsSerialized(_:)``),
        /// written with its COPY row while the event is in hand: written later from `events`,
        /// each read of an event out of the array copied all its fields (empty like `objects`).
        var statistics: [[UInt8]] = []
        /// Where the events go (decided in the transaction, so the ledger's counts match).
        var plan = EventRouter.Plan()
    }

    func handle(_ items: [QueueItem]) async throws {
        var batches: [(RawBatchMessage, RawPayload)] = []
        var taken: Set<HydrationStore.SiteBatch> = []
        for item in items {
            guard let message = RawBatchMessage.parse(item.payload),
                  let payload = RawPayload.parse(message.payload) else {
                try await recordBadMessage(item)
                continue
            }
            // The same batch queued twice (a replay, a relay's repeat) and taken in one turn
            // is applied once; the copy is acknowledged with it.
            guard taken.insert(HydrationStore.SiteBatch(site: message.siteID, batch: message.batchID)).inserted else { continue }
            batches.append((message, payload))
        }
        guard !batches.isEmpty else { return }
        let outcomes = try await apply(batches, router: try routing())
        try await route(batches.map(\.0), outcomes)
        for ((message, _), outcome) in zip(batches, outcomes) { report(outcome, message: message) }
    }

    /// Reports one applied batch as a completion of the `batch` job; a batch that kept
    /// none of many events is an anomaly (a client or validation bug, worth a look).
    func report(_ outcome: Outcome, message: RawBatchMessage) {
        guard let jobs else { return }
        let kept = outcome.events.count + outcome.duplicate
        var anomaly: String?
        if !outcome.repeated && outcome.received >= allRejectedMinEvents && kept == 0 {
            anomaly = "batch \(message.batchID) of site \(message.siteID) accepted 0 of \(outcome.received) events (all invalid)"
        }
        jobs.record("batch", counts: [
            "received": Int64(outcome.received), "stored": outcome.repeated ? 0 : Int64(outcome.events.count),
            "rejected": Int64(outcome.invalid), "duplicate": Int64(outcome.duplicate), "repeated": outcome.repeated ? 1 : 0,
        ], anomaly: anomaly)
    }

    /// Applies batches (a turn of one site or several) in one transaction, each exactly once: one
    /// commit for all of them. A missing partition is created and the whole retried once.
    func apply(_ batches: [(RawBatchMessage, RawPayload)], router: EventRouter) async throws -> [Outcome] {
        var fetched: [Salts] = []
        for (message, _) in batches {
            fetched.append(Salts(current: try await salt.salt(for: message.receivedAt),
                                 previous: try await salt.previousSalt(for: message.receivedAt,
                                                                       continuity: visitorContinuitySeconds)))
        }
        let salts = fetched
        let work = { @Sendable () async throws -> [Outcome] in
            try await postgres.withTransaction { tx -> [Outcome] in
                try await applyTurn(tx, Array(zip(batches, salts)).map { ($0.0.0, $0.0.1, $0.1) }, router: router)
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

    /// Sends a turn's events on as planned: to `aggregate`, and to each matching sink's
    /// `forward:<sink>` queue, one message per batch and queue, all in one round trip.
    /// Each queue's push is atomic; a failure part-way redelivers the batches, and every
    /// consumer's ledger (or delivered marks) makes the repeat a no-op.
    func route(_ messages: [RawBatchMessage], _ outcomes: [Outcome]) async throws {
        var order: [String] = []
        var items: [String: [QueueItem]] = [:]
        func add(_ queue: String, _ payload: [UInt8], site: Int64) {
            if items[queue] == nil { order.append(queue) }
            items[queue, default: []].append(QueueItem(site: String(site), payload: payload))
        }
        for (message, outcome) in zip(messages, outcomes) {
            // Each event's objects were written once, with the COPY (unless the batch was
            // applied before); an `aggregate` message carries only what statistics read, a
            // sink's the whole event, each written once however many sinks take it.
            let plan = outcome.plan
            let objects = outcome.objects.count == outcome.events.count
                ? outcome.objects : outcome.events.map { $0.encodedObjects() }
            if !plan.aggregate.isEmpty {
                let events = outcome.events
                let eventBytes = outcome.statistics.count == events.count
                    ? plan.aggregate.map { outcome.statistics[$0] }
                    : plan.aggregate.map { events[$0].statisticsSerialized(objects[$0]) }
                add(QueueName.aggregate, HydratedBatchMessage.serialized(
                        batchID: message.batchID, siteID: message.siteID, sinkID: nil, eventBytes: eventBytes),
                    site: message.siteID)
            }
            guard !plan.sinks.isEmpty else { continue }
            let needed = Set(plan.sinks.flatMap(\.events))
            let events = outcome.events
            let bytes = events.indices.map { needed.contains($0) ? events[$0].serialized(objects[$0]) : [] }
            for (sink, events) in plan.sinks {
                add(QueueName.forward(sinkID: sink), HydratedBatchMessage.serialized(batchID: message.batchID, siteID: message.siteID,
                                                                                     sinkID: sink, eventBytes: events.map { bytes[$0] }),
                    site: message.siteID)
            }
        }
        try await ReliableQueue.push(order.map { name in
            (name == aggregate.keys.name ? aggregate : ReliableQueue(name: name, connection: aggregate.connection), items[name] ?? [])
        })
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
    /// One element of `batch`: an event object's members (with where its text lies in
    /// the payload), or any other value, which validation rejects.
    enum Element: Sendable {
        case event(EventFields, text: Range<Int>)
        case other(JSONValue)

        /// The element as a valid event, or why it is not one.
        func validated(by validator: EventValidator) throws(ValidationFailure) -> Event {
            switch self {
            case .event(let fields, _): return try validator.validate(fields)
            case .other(let value): return try validator.validate(value)
            }
        }
    }

    var batch: [Element]
    var sentAt: String?
    var context: [String: JSONValue]?
    /// The payload's text, where a rejected event's own text is read from.
    var bytes: [UInt8]

    /// Reads `{"batch":[…],"sentAt":…,"context":…}` in one pass, each event's members
    /// straight into ``EventFields``; `nil` if the text is not that shape.
    static func parse(_ text: String) -> RawPayload? {
        let bytes = Array(text.utf8)
        var batch: [Element]?
        var sentAt: String?
        var context: [String: JSONValue]?
        do {
            try JSONReader.read(bytes) { reader throws(JSONParseError) in
                try reader.members { reader, key throws(JSONParseError) in
                    switch key {
                    case "batch":
                        // As in a parsed object, a repeated member's last value counts.
                        guard reader.peek() == 91 else {
                            batch = nil
                            try reader.skip()
                            return
                        }
                        var elements: [Element] = []
                        try reader.elements { reader throws(JSONParseError) in
                            let start = reader.offset()
                            if reader.peek() == 123 {
                                let fields = try EventFields.read(&reader)
                                elements.append(.event(fields, text: start..<reader.position))
                            } else {
                                elements.append(.other(try reader.value()))
                            }
                        }
                        batch = elements
                    case "sentAt": sentAt = try reader.value().stringValue
                    case "context": context = try reader.value().objectValue
                    default: try reader.skip()
                    }
                }
            }
        } catch {
            return nil
        }
        guard let batch else { return nil }
        return RawPayload(batch: batch, sentAt: sentAt, context: context, bytes: bytes)
    }

    /// A rejected element's text, compact with sorted keys (as `JSONValue.jsonText` writes it).
    func text(of element: Element) -> String {
        switch element {
        case .other(let value): return value.jsonText
        case .event(_, let range):
            return (try? JSONValue.parse(bytes[range]))?.jsonText ?? String(decoding: bytes[range], as: UTF8.self)
        }
    }
}
