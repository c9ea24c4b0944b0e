import Foundation

/// One validated, deduplicated and enriched event, as hydration stored it and as the
/// aggregator and the forwarder receive it. The raw client IP is never included.
public struct HydratedEvent: Sendable, Codable, Hashable {
    /// Hydration's id of the stored event (bigint, unique per site).
    public var eventID: Int64
    public var messageID: String
    public var type: EventType
    /// `track`: the event name; `page`/`screen`: the page name; `metric`: the metric name.
    public var name: String?
    public var userID: String?
    public var anonymousID: String?
    /// When the event happened, corrected for client clock skew.
    public var timestamp: Date
    /// The client's own `timestamp`, as sent.
    public var originalTimestamp: String?
    public var sentAt: String?
    public var receivedAt: Date
    /// hash(daily salt, site, IP, user agent), hex; the salt is never stored.
    public var visitorHash: String
    /// The same hash under yesterday's salt, set only shortly after UTC midnight
    /// (`hydration.visitorContinuityMinutes`), so a visit that crosses midnight continues.
    public var previousVisitorHash: String?
    public var properties: [String: JSONValue]?
    public var traits: [String: JSONValue]?
    public var context: [String: JSONValue]?
    /// The Segment `integrations` map the client sent (which destinations get the event),
    /// kept so routing to sinks can be decided again when a batch is sent on again.
    public var integrations: [String: JSONValue]?
    /// The enrichment hydration added (geo, user agent, referrer, UTM).
    public var enrichment: Enrichment
    /// `metric` only.
    public var metric: Metric?

    public init(eventID: Int64, messageID: String, type: EventType, timestamp: Date, receivedAt: Date,
                visitorHash: String, enrichment: Enrichment = Enrichment()) {
        self.eventID = eventID
        self.messageID = messageID
        self.type = type
        self.timestamp = timestamp
        self.receivedAt = receivedAt
        self.visitorHash = visitorHash
        self.enrichment = enrichment
    }

    enum CodingKeys: String, CodingKey {
        case eventID = "eventId", messageID = "messageId", type, name, userID = "userId",
             anonymousID = "anonymousId", timestamp, originalTimestamp, sentAt, receivedAt, visitorHash,
             previousVisitorHash,
             properties, traits, context, integrations, enrichment, metric
    }

    /// What hydration learned about an event that was only true at receipt.
    public struct Enrichment: Sendable, Codable, Hashable {
        public var country: String?
        public var region: String?
        public var city: String?
        public var browser: String?
        public var browserVersion: String?
        public var os: String?
        public var osVersion: String?
        public var device: String?
        public var isBot: Bool
        public var url: String?
        public var path: String?
        public var referrer: String?
        public var referrerSource: String?
        public var utmSource: String?
        public var utmMedium: String?
        public var utmCampaign: String?
        public var utmTerm: String?
        public var utmContent: String?
        /// Ad click ids from the page URL (`gclid`, `fbclid`, `msclkid`, …).
        public var clickIDs: [String: String]?

        public init() { self.isBot = false }

        enum CodingKeys: String, CodingKey {
            case country, region, city, browser, browserVersion, os, osVersion, device, isBot, url, path, referrer,
                 referrerSource, utmSource, utmMedium, utmCampaign, utmTerm, utmContent, clickIDs = "clickIds"
        }
    }

    /// The measurement of a `metric` event.
    public struct Metric: Sendable, Codable, Hashable {
        public var kind: MetricKind
        public var value: Double
        public var tags: [String: String]

        public init(kind: MetricKind, value: Double, tags: [String: String] = [:]) {
            self.kind = kind
            self.value = value
            self.tags = tags
        }
    }
}
