import Foundation
import TributaryModels

/// One event's journey through the pipeline, as `health-checker trace` prints it: a stage
/// per line (received, hydration, aggregation, one per sink), each with its state, when it
/// happened and what is known; a stage the event has not passed says where it stopped.
struct EventTrace: Sendable {
    /// What a stage made of the event.
    enum State: String, Sendable {
        /// Done: received, stored, aggregated, delivered.
        case done
        /// Hydration refused it (a validation rule); it goes no further, by design.
        case rejected
        /// Hydration had stored the same message id before; this copy goes no further.
        case duplicate
        /// The stage does not take this event (a metric and the aggregator, a sink whose rules exclude it).
        case skipped
        /// Waiting in the stage's queue.
        case queued
        /// Taken by a consumer that is still alive: being worked on.
        case inFlight = "in_flight"
        /// Held by a consumer whose lease expired: waiting for orphan recovery.
        case orphaned
        /// Failed a delivery, parked for a retry.
        case retrying
        /// The forwarder gave up; kept as a dead letter with the reason.
        case deadLettered = "dead_lettered"
        /// No trace of it in the stage or its queue: lost there (replay fills the gap).
        case missing
    }

    struct Stage: Sendable {
        var name: String
        var state: State
        /// When the stage finished with the event (or last tried).
        var at: Date?
        var summary: String
        var detail: [String: JSONValue] = [:]
    }

    var query: String
    var siteID: Int64
    var messageID: String?
    var eventID: Int64?
    var batchID: Int64
    var stages: [Stage] = []

    /// The first stage not done, rejected, duplicate or skipped: where the event stopped.
    var stoppedAt: Stage? {
        stages.first { ![.done, .rejected, .duplicate, .skipped].contains($0.state) }
    }

    var json: JSONValue {
        var o: [String: JSONValue] = ["query": .string(query), "siteId": .int(siteID), "batchId": .int(batchID)]
        if let messageID { o["messageId"] = .string(messageID) }
        if let eventID { o["eventId"] = .int(eventID) }
        let received = stages.first?.at
        o["stages"] = .array(stages.map { s in
            var stage: [String: JSONValue] = ["stage": .string(s.name), "state": .string(s.state.rawValue),
                                              "summary": .string(s.summary)]
            if let at = s.at {
                stage["at"] = .string(ISO8601.format(at))
                if let received { stage["secondsAfterReceipt"] = .double((at.timeIntervalSince(received) * 1000).rounded() / 1000) }
            }
            if !s.detail.isEmpty { stage["detail"] = .object(s.detail) }
            return .object(stage)
        })
        if let stop = stoppedAt { o["stoppedAt"] = .string(stop.name) }
        return .object(o)
    }

    /// A line per stage, for people.
    var text: String {
        var lines = ["event \(messageID ?? "-") · event id \(eventID.map(String.init) ?? "-") · site \(siteID) · batch \(batchID)"]
        let received = stages.first?.at
        let width = max(12, stages.map(\.name.count).max() ?? 0)
        for s in stages {
            var when = ""
            if let at = s.at {
                when = ISO8601.format(at)
                if let received, s.name != stages.first?.name {
                    when += String(format: " (+%.2f s)", at.timeIntervalSince(received))
                }
            }
            lines.append(s.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                         + s.state.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + "  "
                         + (when.isEmpty ? "" : when + "  ") + s.summary)
        }
        if let stop = stoppedAt { lines.append("stopped at: \(stop.name) — \(stop.summary)") }
        return lines.joined(separator: "\n")
    }
}
