import Foundation
import TributaryModels
import TributaryPostgres

extension PipelineProbe {
    /// One `delivery:<sink>` check per enabled sink: failing while events have waited in
    /// the sink's retries for longer than `delivery.maxRetryAgeSeconds` since their first
    /// attempt (the sink is down, slow past its timeout, or refusing with 5xx/429).
    /// A sink that recovers delivers its retries, and the check passes again.
    func deliveryChecks(sinks: [(id: Int64, name: String)], now: Date) async throws -> [CheckResult] {
        guard !sinks.isEmpty else { return [] }
        let rows = try await postgres.query("""
            SELECT sink_id, count(*)::bigint AS groups, sum(event_count)::bigint AS events,
                   extract(epoch FROM $2::timestamptz - min(first_attempt_at))::float8 AS age,
                   max(attempts)::bigint AS attempts,
                   (array_agg(last_status ORDER BY first_attempt_at))[1]::bigint AS status,
                   (array_agg(last_error ORDER BY first_attempt_at))[1] AS error
            FROM forwarder.retries WHERE sink_id = ANY($1::bigint[]) GROUP BY sink_id
            """, [Self.ints(sinks.map(\.id)), ISO8601.format(now)]).rows
        var waiting: [Int64: (events: Int64, age: Double, detail: [String: JSONValue], reason: String)] = [:]
        for row in rows {
            let sink = try row.int("sink_id") ?? 0
            let age = max(0, try row.double("age") ?? 0)
            let events = try row.int("events") ?? 0
            let status = try row.int("status")
            let error = try row.string("error")
            var detail: [String: JSONValue] = [
                "sinkId": .int(sink), "retryGroups": .int(try row.int("groups") ?? 0), "events": .int(events),
                "oldestFirstAttemptSeconds": .int(Int64(age)), "mostAttempts": .int(try row.int("attempts") ?? 0),
                "maxRetryAgeSeconds": .double(configuration.deliveryMaxRetryAgeSeconds),
                "inspect": .string("forwarder sinks show \(sink); forwarder dead-letters list --sink \(sink)"),
            ]
            if let status { detail["lastStatus"] = .int(status) }
            if let error { detail["lastError"] = .string(String(error.prefix(300))) }
            let reason = status.map { "HTTP \($0)" } ?? error.map { String($0.prefix(120)) } ?? "no answer"
            waiting[sink] = (events, age, detail, reason)
        }
        return sinks.map { sink in
            let name = "delivery:\(sink.id)"
            guard let w = waiting[sink.id] else {
                return .ok(name, .delivery, "sink \(sink.name) has no events waiting for a retry")
            }
            guard w.age > configuration.deliveryMaxRetryAgeSeconds else {
                return .ok(name, .delivery, "sink \(sink.name): \(w.events) event(s) waiting for a retry for \(Int(w.age)) s", w.detail)
            }
            return .failing(name, .delivery,
                            "sink \(sink.name) has not taken \(w.events) event(s) for \(Int(w.age)) s (last: \(w.reason)); they are retried",
                            w.detail)
        }
    }
}
