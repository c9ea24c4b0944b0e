import Foundation
import Logging
import Metrics
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// Delivers one chunk of events to a sink and settles every event in one transaction:
/// delivered (marked once), parked for a retry, or dead-lettered with the reason, and
/// the attempt logged. Events already marked delivered are skipped, so a redelivery
/// after a crash sends only what was not confirmed (with the same idempotency keys).
struct Deliverer: Sendable {
    let postgres: PostgresClient
    let catalog: SinkCatalog
    let context: DeliveryContext
    let policy: RetryPolicy
    let logger: Logger
    /// Where each settled request goes: job `deliver:<sinkId>` (the health-checker's expectations).
    var jobs: JobReporter? = nil

    /// Where a chunk came from: the queue (first attempt) or a parked retry.
    struct Prior: Sendable {
        var site: Int64
        var retryID: Int64
        var attempts: Int
        var firstAttemptAt: Date
    }

    /// Splits events into requests of at most the sink's batch size and byte limit.
    static func chunks(_ events: [ForwardEvent], limits: Sink.Limits) -> [[ForwardEvent]] {
        var chunks: [[ForwardEvent]] = []
        var current: [ForwardEvent] = []
        var bytes = 0
        for event in events {
            let size = event.approximateBytes > 0 ? event.approximateBytes : event.storedText.utf8.count
            if !current.isEmpty && (current.count >= limits.batchSize || bytes + size > limits.maxBytes) {
                chunks.append(current)
                current = []
                bytes = 0
            }
            current.append(event)
            bytes += size
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// Delivers `events` (one chunk) to `sink` and settles them. Throws only when the
    /// settlement could not be stored (PostgreSQL down): the caller gives the events back.
    func deliver(_ events: [ForwardEvent], sink: Sink, breaker: CircuitBreaker, prior: Prior? = nil) async throws {
        let pending = try await DeliveryStore.undelivered(postgres, sink: sink.id, events: events)
        guard !pending.isEmpty else {
            if let prior { try await postgres.withTransaction { try await DeliveryStore.deleteRetry($0, site: prior.site, retryID: prior.retryID) } }
            return
        }
        let entry = catalog.entry(sink.id)
        let latest = entry?.sink ?? sink
        let adapter = SinkAdapters.adapter(for: latest.type)
        let attempt = (prior?.attempts ?? 0) + 1
        let firstAttemptAt = prior?.firstAttemptAt ?? Date()
        let started = Date()
        let clock = ContinuousClock.now
        var result: DeliveryResult
        if let error = entry?.secretError {
            result = .retry(status: nil, error: error, retryAfter: nil, response: nil)
        } else {
            result = await adapter.deliver(pending, sink: latest, secret: entry?.secret, context: context)
        }
        let latency = Int((ContinuousClock.now - clock).nanoseconds / 1_000_000)
        if case .retry = result, latest.type == .statsd { result = .dropped(error: "statsd is never retried") }
        switch result {
        case .delivered, .partial: breaker.succeeded()
        case .retry(_, _, let retryAfter, _): breaker.failed(pause: retryAfter)
        case .rejected: breaker.neutral()
        case .dropped: break
        }
        logger.debug("delivery attempt", metadata: ["sink.id": "\(sink.id)", "outcome": "\(result.label)",
                                                    "breaker": "\(breaker.state.rawValue)", "events": "\(pending.count)"])
        let requestID = WebhookSink.messageID(sink: sink.id, events: pending) + "-\(attempt)"
        try await postgres.withTransaction { tx in
            var keepRetryRow = false
            switch result {
            case .delivered(let status):
                try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                      latencyMs: latency, status: status, outcome: "delivered", error: nil, events: pending)
                try await DeliveryStore.markDelivered(tx, sink: sink.id, events: pending, attempts: attempt)
            case .partial(let status, let rejected, let response):
                let refused = pending.indices.filter { rejected[$0] != nil }.map { pending[$0] }
                let taken = pending.indices.filter { rejected[$0] == nil }.map { pending[$0] }
                try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                      latencyMs: latency, status: status, outcome: "partial",
                                                      error: "\(refused.count) refused", events: pending)
                try await DeliveryStore.markDelivered(tx, sink: sink.id, events: taken, attempts: attempt)
                try await DeliveryStore.deadLetter(tx, sink: sink.id, events: refused, reason: "rejected", attempts: attempt,
                                                   firstAttemptAt: firstAttemptAt, status: status,
                                                   errors: pending.indices.compactMap { rejected[$0] }, response: response)
            case .retry(let status, let error, let retryAfter, let response):
                let age = Date().timeIntervalSince(firstAttemptAt)
                if policy.isExhausted(attempts: attempt, ageSeconds: age) {
                    try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                          latencyMs: latency, status: status, outcome: "dead", error: error, events: pending)
                    try await DeliveryStore.deadLetter(tx, sink: sink.id, events: pending, reason: "expired", attempts: attempt,
                                                       firstAttemptAt: firstAttemptAt, status: status,
                                                       errors: Array(repeating: error, count: pending.count), response: response)
                } else {
                    try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                          latencyMs: latency, status: status, outcome: "retry", error: error, events: pending)
                    let next = Date().addingTimeInterval(policy.delay(afterAttempts: attempt, retryAfter: retryAfter))
                    if let prior {
                        keepRetryRow = true
                        try await DeliveryStore.updateRetry(tx, site: prior.site, retryID: prior.retryID, attempts: attempt,
                                                            nextAttemptAt: next, status: status, error: error, response: response)
                    } else {
                        try await DeliveryStore.park(tx, sink: sink.id, events: pending, attempts: attempt, firstAttemptAt: firstAttemptAt,
                                                     nextAttemptAt: next, status: status, error: error, response: response)
                    }
                }
            case .rejected(let status, let error, let response):
                try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                      latencyMs: latency, status: status, outcome: "dead", error: error, events: pending)
                try await DeliveryStore.deadLetter(tx, sink: sink.id, events: pending, reason: "rejected", attempts: attempt,
                                                   firstAttemptAt: firstAttemptAt, status: status,
                                                   errors: Array(repeating: error, count: pending.count), response: response)
            case .dropped(let error):
                try await DeliveryStore.recordAttempt(tx, sink: sink.id, requestID: requestID, attempt: attempt, startedAt: started,
                                                      latencyMs: latency, status: nil, outcome: "dead", error: error, events: pending)
                try await DeliveryStore.deadLetter(tx, sink: sink.id, events: pending, reason: "dropped", attempts: attempt,
                                                   firstAttemptAt: firstAttemptAt, status: nil,
                                                   errors: Array(repeating: error, count: pending.count), response: nil)
            }
            if let prior, !keepRetryRow { try await DeliveryStore.deleteRetry(tx, site: prior.site, retryID: prior.retryID) }
        }
        Counter(label: "tributary_forwarder_events_total", dimensions: [("sink", String(sink.id)), ("outcome", result.label)])
            .increment(by: pending.count)
        jobs?.record("deliver:\(sink.id)", counts: ["events": Int64(pending.count), result.label: Int64(pending.count)])
    }
}

extension DeliveryResult {
    var label: String {
        switch self {
        case .delivered: "delivered"
        case .partial: "partial"
        case .retry: "retry"
        case .rejected: "rejected"
        case .dropped: "dropped"
        }
    }
}
