import Foundation
import TributaryModels

/// A sink as defined in `forwarder.sinks`, with the limits that apply to it (its type's
/// defaults, overridden by its own settings).
struct Sink: Sendable, Hashable {
    var id: Int64
    var name: String
    var type: SinkType
    var url: String
    var sites: [Int64]
    var eventTypes: [String]
    var eventNames: [String]
    var secretFile: String?
    var allowPrivateNetwork: Bool
    var settings: Settings
    var enabled: Bool
    var createdAt: Date?
    var updatedAt: Date?

    /// Per-sink overrides; `nil` means the type's default.
    struct Settings: Sendable, Hashable {
        var batchSize: Int?
        var maxWaitMs: Int?
        var concurrency: Int?
        var timeoutMs: Int?
        var eventCounters: Bool?

        var jsonValue: JSONValue {
            var o: [String: JSONValue] = [:]
            if let batchSize { o["batchSize"] = .int(Int64(batchSize)) }
            if let maxWaitMs { o["maxWaitMs"] = .int(Int64(maxWaitMs)) }
            if let concurrency { o["concurrency"] = .int(Int64(concurrency)) }
            if let timeoutMs { o["timeoutMs"] = .int(Int64(timeoutMs)) }
            if let eventCounters { o["eventCounters"] = .bool(eventCounters) }
            return .object(o)
        }

        init(batchSize: Int? = nil, maxWaitMs: Int? = nil, concurrency: Int? = nil, timeoutMs: Int? = nil,
             eventCounters: Bool? = nil) {
            self.batchSize = batchSize
            self.maxWaitMs = maxWaitMs
            self.concurrency = concurrency
            self.timeoutMs = timeoutMs
            self.eventCounters = eventCounters
        }

        init(json: JSONValue?) {
            let o = json?.objectValue ?? [:]
            func int(_ key: String) -> Int? { if case .int(let n)? = o[key] { Int(n) } else { nil } }
            batchSize = int("batchSize")
            maxWaitMs = int("maxWaitMs")
            concurrency = int("concurrency")
            timeoutMs = int("timeoutMs")
            if case .bool(let b)? = o["eventCounters"] { eventCounters = b }
        }
    }

    /// The limits of one sink type, which a sink's settings may override.
    struct Limits: Sendable, Hashable {
        /// The most events in one request (or, for statsd, one flush).
        var batchSize: Int
        /// The largest request body, in bytes, before compression.
        var maxBytes: Int
        /// How long a batch may wait to fill, in milliseconds.
        var maxWaitMs: Int
        /// Requests in flight at once per forwarder instance.
        var concurrency: Int
        /// The whole request's timeout, in milliseconds.
        var timeoutMs: Int
    }

    /// The defaults of each type, after the sink's documented limits.
    static func defaults(_ type: SinkType) -> Limits {
        switch type {
        case .webhook: Limits(batchSize: 100, maxBytes: 1 << 20, maxWaitMs: 1000, concurrency: 2, timeoutMs: 10_000)
        // Mixpanel's import API: at most 2000 events and 10 MB uncompressed per request.
        case .mixpanel: Limits(batchSize: 2000, maxBytes: 10_000_000, maxWaitMs: 2000, concurrency: 2, timeoutMs: 30_000)
        // Segment's batch API: at most 500 KB per request (and 32 KB per event).
        case .segment: Limits(batchSize: 100, maxBytes: 500_000, maxWaitMs: 1000, concurrency: 2, timeoutMs: 10_000)
        // One flush of up to 1000 events, sent as datagrams of at most StatsdSink.datagramBytes.
        case .statsd: Limits(batchSize: 1000, maxBytes: 1 << 20, maxWaitMs: 200, concurrency: 1, timeoutMs: 1000)
        }
    }

    /// The limits that apply: the type's defaults with this sink's overrides.
    var limits: Limits {
        var l = Self.defaults(type)
        if let v = settings.batchSize { l.batchSize = v }
        if let v = settings.maxWaitMs { l.maxWaitMs = v }
        if let v = settings.concurrency { l.concurrency = v }
        if let v = settings.timeoutMs { l.timeoutMs = v }
        return l
    }

    /// The largest batch size a type allows (a sink cannot be set above it).
    static func maximumBatchSize(_ type: SinkType) -> Int {
        switch type {
        case .webhook: 10_000
        case .mixpanel: 2000
        case .segment: 2500
        case .statsd: 100_000
        }
    }
}
