import Foundation
import TributaryModels

/// One hydrated event, reduced to what the statistics use.
struct StatEvent: Sendable, Hashable {
    var eventID: Int64
    var type: EventType
    var name: String?
    var time: Date
    var visitor: String
    var previousVisitor: String?
    var path: String?
    var source: String?
    var utmSource: String?
    var utmMedium: String?
    var utmCampaign: String?
    var country: String?
    var browser: String?
    var os: String?
    var device: String?
    var isBot: Bool
    /// The event's properties, as text, for the site's configured keys only.
    var props: [String: String] = [:]

    /// Whether the event counts in the statistics: page views, screens and custom
    /// events of people (identify, group, alias and metrics describe, they do not visit;
    /// the health-checker's canary events only measure the pipeline).
    var isInteraction: Bool {
        !isBot && (type == .page || type == .screen || (type == .track && name != Self.canaryName))
    }
    /// The event name of the health-checker's canaries.
    static let canaryName = "tributary_canary"
    var isPageview: Bool { type == .page || type == .screen }

    /// Reads one event of a hydrated batch message (docs/queues.md); `nil` if it lacks the
    /// fields every event has.
    init?(json value: JSONValue, props keys: [String]) {
        guard let o = value.objectValue, case .int(let id)? = o["eventId"],
              let type = o["type"]?.stringValue.flatMap(EventType.init(rawValue:)),
              let time = o["timestamp"]?.stringValue.flatMap(ISO8601.parse),
              let visitor = o["visitorHash"]?.stringValue else { return nil }
        let enrichment = o["enrichment"]?.objectValue ?? [:]
        self.init(eventID: id, type: type, name: o["name"]?.stringValue, time: time, visitor: visitor,
                  previousVisitor: o["previousVisitorHash"]?.stringValue, enrichment: enrichment,
                  properties: o["properties"]?.objectValue, props: keys)
    }

    init(eventID: Int64, type: EventType, name: String?, time: Date, visitor: String, previousVisitor: String?,
         enrichment e: [String: JSONValue], properties: [String: JSONValue]?, props keys: [String]) {
        self.eventID = eventID
        self.type = type
        self.name = name
        self.time = time
        self.visitor = visitor
        self.previousVisitor = previousVisitor
        path = e["path"]?.stringValue
        source = e["referrerSource"]?.stringValue
        utmSource = e["utmSource"]?.stringValue
        utmMedium = e["utmMedium"]?.stringValue
        utmCampaign = e["utmCampaign"]?.stringValue
        country = e["country"]?.stringValue
        browser = e["browser"]?.stringValue
        os = e["os"]?.stringValue
        device = e["device"]?.stringValue
        if case .bool(true)? = e["isBot"] { isBot = true } else { isBot = false }
        for key in keys {
            switch properties?[key] {
            case .string(let s)?: props[key] = s
            case .int(let i)?: props[key] = String(i)
            case .double(let d)?: props[key] = String(d)
            case .bool(let b)?: props[key] = b ? "true" : "false"
            default: break
            }
        }
    }
}

/// A message of the `aggregate` queue, parsed.
struct AggregateMessage: Sendable {
    var batchID: Int64
    var siteID: Int64
    /// Every event of the message (received), and those that parsed.
    var received: Int
    var events: [StatEvent]

    /// The members of each event the statistics never read: left out of the parse.
    static let unread: Set<String> = ["context", "traits", "integrations", "metric", "originalTimestamp", "sentAt",
                                      "receivedAt", "messageId", "userId", "anonymousId"]

    /// `nil` if the bytes are not a hydrated batch message.
    static func parse(_ bytes: [UInt8], props: (Int64) -> [String]) -> AggregateMessage? {
        // The message object is at depth 0, `events` at 1, each event at 2.
        guard let o = (try? JSONValue.parse(bytes, skippingMembers: unread, atDepth: 2))?.objectValue,
              case .int(let batch)? = o["batchId"],
              case .int(let site)? = o["siteId"], case .array(let events)? = o["events"] else { return nil }
        let keys = props(site)
        let parsed = events.compactMap { StatEvent(json: $0, props: keys) }
        guard parsed.count == events.count else { return nil }
        return AggregateMessage(batchID: batch, siteID: site, received: events.count, events: parsed)
    }
}
