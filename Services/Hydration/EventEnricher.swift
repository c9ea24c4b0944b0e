import Foundation
import TributaryModels

/// Turns a validated event into a hydrated one: event time, page attribution, visitor
/// hash, traits as of the event's time; drops the raw IP from the stored context.
struct EventEnricher: Sendable {
    let clock: EventClock
    /// Country, region and city from the IP; `nil` when geo is turned off.
    var geo: GeoIP?
    /// Browser, OS and device from the user agent; `nil` when turned off.
    var userAgents: UserAgentParser?
    /// Whether a site opted in to keeping raw IPs (none by default).
    var keepsRawIP: @Sendable (Int64) -> Bool = { _ in false }

    /// A class, not a struct: a turn keeps hundreds of these in an array and reads them in
    /// several passes, and each read of a struct element copied (retained and released)
    /// every field of the event.
    final class Input {
        let event: Event
        let position: Int
        let messageID: String
        let batchSentAt: String?
        /// The batch's own `context`, which every event's context extends.
        let batchContext: [String: JSONValue]?
        /// Whether the batch's text could hold a NUL (see `String.mayHoldNUL`); when not,
        /// the event's objects need no NUL replacement.
        let mayHoldNUL: Bool
        /// The event's time and clock flags when already decided (``EventClock/resolve``).
        var resolved: (time: Date, flags: [String])?

        init(event: Event, position: Int, messageID: String, batchSentAt: String?,
             batchContext: [String: JSONValue]? = nil, mayHoldNUL: Bool = true,
             resolved: (time: Date, flags: [String])? = nil) {
            self.event = event
            self.position = position
            self.messageID = messageID
            self.batchSentAt = batchSentAt
            self.batchContext = batchContext
            self.mayHoldNUL = mayHoldNUL
            self.resolved = resolved
        }
    }

    /// What enrichment repeats within one turn, where most of a batch's events share one
    /// client: visitor hashes, locations, page and referrer parses. Bounded by the turn's
    /// events; dropped after the turn.
    struct Memo {
        var pages = PageAttribution.Memo()
        var locations: [String: GeoIP.Location?] = [:]
        var hashes: [HashKey: String] = [:]

        struct HashKey: Hashable {
            var salt: [UInt8]
            var site: Int64
            var ip: String?
            var userAgent: String?
        }

        mutating func visitorHash(salt: [UInt8], site: Int64, ip: String?, userAgent: String?) -> String {
            let key = HashKey(salt: salt, site: site, ip: ip, userAgent: userAgent)
            if let known = hashes[key] { return known }
            let hash = VisitorSalt.visitorHash(salt: salt, site: site, ip: ip, userAgent: userAgent)
            hashes[key] = hash
            return hash
        }

        /// The client of the last event enriched: most of a batch's events come from one
        /// browser, so its location, user agent parse and visitor hashes are reused by
        /// comparing two strings instead of hashing them into four lookups.
        var lastClient: (key: ClientKey, value: ClientFacts)?

        struct ClientKey: Equatable {
            var site: Int64
            var ip: String?
            var userAgent: String?
            var salt: [UInt8]
            var previousSalt: [UInt8]?
        }

        /// What enrichment derives from the client alone.
        struct ClientFacts {
            var location: GeoIP.Location?
            var client: UserAgentParser.Client?
            var visitorHash: String
            var previousVisitorHash: String?
        }

        mutating func client(_ key: ClientKey, geo: GeoIP?, userAgents: UserAgentParser?) -> ClientFacts {
            if let last = lastClient, last.key == key { return last.value }
            var facts = ClientFacts(visitorHash: visitorHash(salt: key.salt, site: key.site, ip: key.ip, userAgent: key.userAgent))
            if let previous = key.previousSalt {
                facts.previousVisitorHash = visitorHash(salt: previous, site: key.site, ip: key.ip, userAgent: key.userAgent)
            }
            if let ip = key.ip, let geo { facts.location = location(of: ip, in: geo) }
            if let userAgent = key.userAgent, !userAgent.isEmpty { facts.client = userAgents?.parse(userAgent) }
            lastClient = (key, facts)
            return facts
        }

        mutating func location(of ip: String, in geo: GeoIP) -> GeoIP.Location? {
            if let known = locations[ip] { return known }
            let found = geo.locate(ip)
            locations[ip] = found
            return found
        }
    }

    func enrich(_ input: Input, eventID: Int64, message: RawBatchMessage, salts: HydrationHandler.Salts,
                traits: [String: JSONValue]?) -> (HydratedEvent, [String]) {
        var memo = Memo()
        return enrich(input, eventID: eventID, message: message, salts: salts, traits: traits, memo: &memo)
    }

    /// ``enrich(_:eventID:message:salts:traits:)``, reusing what `memo` already knows from the turn.
    func enrich(_ input: Input, eventID: Int64, message: RawBatchMessage, salts: HydrationHandler.Salts,
                traits: [String: JSONValue]?, memo: inout Memo) -> (HydratedEvent, [String]) {
        let event = input.event
        let (time, flags) = input.resolved ?? clock.resolve(timestamp: event.timestamp, sentAt: event.sentAt ?? input.batchSentAt,
                                                            receivedAt: message.receivedAt)
        // The batch's context extended by the event's (most batches have none of their own).
        var context = event.context ?? [:]
        if let batchContext = input.batchContext {
            context = batchContext
            for (key, value) in event.context ?? [:] { context[key] = value }
        }
        let page = context["page"]?.objectValue ?? [:]
        let url = page["url"]?.stringValue ?? event.properties?["url"]?.stringValue
        let referrer = page["referrer"]?.stringValue ?? event.properties?["referrer"]?.stringValue
        let attribution = PageAttribution.parse(url: url, referrer: referrer, memo: &memo.pages)
        let ip = context["ip"]?.stringValue ?? message.clientIP
        let userAgent = context["userAgent"]?.stringValue ?? message.userAgent
        var enrichment = HydratedEvent.Enrichment()
        enrichment.url = attribution.url
        enrichment.path = attribution.path
        enrichment.referrer = attribution.referrer
        enrichment.referrerSource = attribution.referrerSource
        enrichment.utmSource = attribution.utmSource
        enrichment.utmMedium = attribution.utmMedium
        enrichment.utmCampaign = attribution.utmCampaign
        enrichment.utmTerm = attribution.utmTerm
        enrichment.utmContent = attribution.utmContent
        enrichment.clickIDs = attribution.clickIDs.isEmpty ? nil : attribution.clickIDs
        let facts = memo.client(.init(site: message.siteID, ip: ip, userAgent: userAgent, salt: salts.current,
                                      previousSalt: salts.previous), geo: geo, userAgents: userAgents)
        if let location = facts.location {
            enrichment.country = location.country
            enrichment.region = location.region
            enrichment.city = location.city
        }
        if let client = facts.client {
            enrichment.browser = client.browser
            enrichment.browserVersion = client.browserVersion
            enrichment.os = client.os
            enrichment.osVersion = client.osVersion
            enrichment.device = client.deviceType
            enrichment.isBot = client.isBot
        }
        // The stored context leaves out the raw IP unless the site keeps it (removing a
        // key copies the dictionary, so only when there is one to remove).
        var storedContext = context
        if keepsRawIP(message.siteID) {
            if let ip, storedContext["ip"] != .string(ip) { storedContext["ip"] = .string(ip) }
        } else if storedContext["ip"] != nil {
            storedContext["ip"] = nil
        }
        var hydrated = HydratedEvent(
            eventID: eventID, messageID: input.messageID, type: event.type, timestamp: time,
            receivedAt: message.receivedAt,
            visitorHash: facts.visitorHash, enrichment: enrichment)
        hydrated.previousVisitorHash = facts.previousVisitorHash
        hydrated.name = event.type == .track ? event.event : event.name
        hydrated.userID = event.userId
        hydrated.anonymousID = event.anonymousId
        hydrated.originalTimestamp = event.timestamp
        hydrated.sentAt = event.sentAt ?? input.batchSentAt
        let mayHoldNUL = input.mayHoldNUL
        func clean(_ object: [String: JSONValue]) -> [String: JSONValue] {
            mayHoldNUL ? JSONValue.object(object).withoutNUL().objectValue ?? [:] : object
        }
        hydrated.properties = event.properties.map(clean)
        hydrated.integrations = event.integrations.map(clean)
        hydrated.context = storedContext.isEmpty ? nil : clean(storedContext)
        // Stored traits were cleaned when they were saved; only the event's own may hold a NUL.
        var merged = event.traits ?? [:]
        if let traits {
            merged = traits
            for (k, v) in event.traits ?? [:] { merged[k] = v }
        }
        hydrated.traits = merged.isEmpty ? nil : clean(merged)
        if event.type == .metric, let kind = event.kind, let value = event.value {
            hydrated.metric = HydratedEvent.Metric(kind: kind, value: value, tags: event.tags ?? [:])
        }
        return (hydrated, flags)
    }
}
