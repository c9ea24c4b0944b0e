import Foundation

/// One event as a client sent it: the Segment spec's common and per-type fields, plus
/// the fields of our `metric` type. Unknown fields are not kept here; the raw batch
/// (stored by the collector) is the source of truth for everything a client sent.
public struct Event: Sendable, Codable, Hashable {
    public var type: EventType
    public var messageId: String?
    public var userId: String?
    public var anonymousId: String?
    /// The event name of a `track` call.
    public var event: String?
    /// The page or screen name of `page`/`screen`, or the metric name of `metric`.
    public var name: String?
    public var category: String?
    public var groupId: String?
    public var previousId: String?
    public var properties: [String: JSONValue]?
    public var traits: [String: JSONValue]?
    public var context: [String: JSONValue]?
    public var integrations: [String: JSONValue]?
    /// When the event happened, by the client's clock (ISO-8601 text as sent).
    public var timestamp: String?
    /// When the client sent the event, by the client's clock.
    public var sentAt: String?
    /// `metric` only: the kind of metric.
    public var kind: MetricKind?
    /// `metric` only: the value.
    public var value: Double?
    /// `metric` only: dimension tags.
    public var tags: [String: String]?

    public init(type: EventType, messageId: String? = nil) {
        self.type = type
        self.messageId = messageId
    }
}
