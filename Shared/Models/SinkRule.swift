/// The kinds of sink the forwarder delivers to.
public enum SinkType: String, Sendable, Codable, CaseIterable {
    case webhook, mixpanel, segment, statsd

    /// The event types a sink of this type can take at all. Metrics go to statsd sinks
    /// only; a statsd sink takes other events only when it derives counters from them.
    public var acceptedTypes: Set<EventType> {
        switch self {
        case .webhook: [.track, .page, .screen, .identify, .group, .alias]
        case .segment: [.track, .page, .screen, .identify]
        case .mixpanel: [.track, .page, .screen]
        case .statsd: [.metric]
        }
    }

    /// The destination name a client's Segment `integrations` map may use for this type
    /// (besides the sink's own name), compared case-insensitively.
    public var integrationName: String {
        switch self {
        case .webhook: "Webhooks"
        case .mixpanel: "Mixpanel"
        case .segment: "Segment"
        case .statsd: "StatsD"
        }
    }
}

/// What hydration needs of a sink to route events to it: which sites, event types and
/// event names it wants. Empty sets mean "any". Read from `forwarder.sinks`.
public struct SinkRule: Sendable, Hashable {
    public var sinkID: Int64
    public var name: String
    public var type: SinkType
    public var sites: Set<Int64>
    public var eventTypes: Set<EventType>
    public var eventNames: Set<String>
    /// statsd only: also count every other event as a DogStatsD counter.
    public var eventCounters: Bool

    public init(sinkID: Int64, name: String, type: SinkType, sites: Set<Int64> = [], eventTypes: Set<EventType> = [],
                eventNames: Set<String> = [], eventCounters: Bool = false) {
        self.sinkID = sinkID
        self.name = name
        self.type = type
        self.sites = sites
        self.eventTypes = eventTypes
        self.eventNames = eventNames
        self.eventCounters = eventCounters
    }

    /// Whether an event of `site`, of `type` and named `name`, with the client's
    /// `integrations` map, goes to this sink.
    ///
    /// The map follows Segment's rules: a key naming the sink (its own name, or its type's
    /// ``SinkType/integrationName``) decides, `false` excluding and `true` or an options
    /// object including; otherwise `"All": false` excludes; otherwise the event goes.
    public func matches(site: Int64, type eventType: EventType, name eventName: String?,
                        integrations: [String: JSONValue]?) -> Bool {
        guard sites.isEmpty || sites.contains(site) else { return false }
        let takes = type.acceptedTypes.contains(eventType) || (type == .statsd && eventCounters)
        guard takes, eventTypes.isEmpty || eventTypes.contains(eventType) else { return false }
        if !eventNames.isEmpty {
            guard let eventName, eventNames.contains(eventName) else { return false }
        }
        guard let integrations, !integrations.isEmpty else { return true }
        let ownName = name.lowercased(), typeName = type.integrationName.lowercased()
        var all: JSONValue?
        for (key, value) in integrations {
            let lower = key.lowercased()
            if lower == ownName || lower == typeName {
                if case .bool(let on) = value { return on }
                return value.objectValue != nil
            }
            if lower == "all" { all = value }
        }
        if case .bool(false)? = all { return false }
        return true
    }
}
