/// Hydrated events written straight to JSON bytes, without building a ``JSONValue`` tree
/// first: the same bytes as `jsonValue.serialized()` (keys in sorted order), at a fraction
/// of the allocations. Hydration writes every event this way, once per turn.
extension HydratedEvent {
    /// The event's free-form objects as compact JSON, written once and used twice: as
    /// the `jsonb` columns of hydration's COPY and inside the queue message.
    public struct EncodedObjects: Sendable {
        public var context: [UInt8]?
        public var properties: [UInt8]?
        public var traits: [UInt8]?
        public var integrations: [UInt8]?
        public var enrichment: [UInt8]
        public var metric: [UInt8]?
    }

    /// Writes the event's objects (each with its keys sorted).
    public func encodedObjects() -> EncodedObjects {
        func bytes(_ object: [String: JSONValue]?) -> [UInt8]? { object.map { JSONValue.object($0).serialized() } }
        return EncodedObjects(context: bytes(context), properties: bytes(properties), traits: bytes(traits),
                              integrations: bytes(integrations), enrichment: enrichment.serialized(),
                              metric: metric.map { $0.jsonValue.serialized() })
    }

    /// The event's compact JSON, keys sorted: equal to `jsonValue.serialized()`.
    public func serialized() -> [UInt8] { serialized(encodedObjects()) }

    /// The event's compact JSON with its objects already written (`objects` must be this
    /// event's ``encodedObjects()``).
    public func serialized(_ objects: EncodedObjects) -> [UInt8] {
        var w = SortedObjectWriter()
        w.out.reserveCapacity(256 + (objects.context?.count ?? 0) + (objects.properties?.count ?? 0)
                              + (objects.traits?.count ?? 0) + objects.enrichment.count)
        w.open()
        // Keys in sorted (code unit) order.
        if let anonymousID { w.string("anonymousId", anonymousID) }
        if let context = objects.context { w.raw("context", context) }
        w.raw("enrichment", objects.enrichment)
        w.raw("eventId", String(eventID).utf8)
        if let integrations = objects.integrations { w.raw("integrations", integrations) }
        w.string("messageId", messageID)
        if let metric = objects.metric { w.raw("metric", metric) }
        if let name { w.string("name", name) }
        if let originalTimestamp { w.string("originalTimestamp", originalTimestamp) }
        if let previousVisitorHash { w.string("previousVisitorHash", previousVisitorHash) }
        if let properties = objects.properties { w.raw("properties", properties) }
        w.string("receivedAt", ISO8601.format(receivedAt))
        if let sentAt { w.string("sentAt", sentAt) }
        w.string("timestamp", ISO8601.format(timestamp))
        if let traits = objects.traits { w.raw("traits", traits) }
        w.string("type", type.rawValue)
        if let userID { w.string("userId", userID) }
        w.string("visitorHash", visitorHash)
        w.close()
        return w.out
    }
}

extension HydratedEvent {
    /// The members of an event the statistics read, in an `aggregate` message: the event
    /// without `context`, `traits`, `integrations`, `metric`, `originalTimestamp`, `sentAt`,
    /// `userId` and `anonymousId` (docs/queues.md). It still decodes as a ``HydratedEvent``.
    public static let statisticsMembers: Set<String> = [
        "enrichment", "eventId", "messageId", "name", "previousVisitorHash", "properties", "receivedAt", "timestamp",
        "type", "visitorHash",
    ]

    /// The event's ``statisticsMembers`` as compact JSON, keys sorted (`objects` must be
    /// this event's ``encodedObjects()``).
    public func statisticsSerialized(_ objects: EncodedObjects) -> [UInt8] {
        var w = SortedObjectWriter()
        w.out.reserveCapacity(160 + (objects.properties?.count ?? 0) + objects.enrichment.count)
        w.open()
        w.raw("enrichment", objects.enrichment)
        w.raw("eventId", String(eventID).utf8)
        w.string("messageId", messageID)
        if let name { w.string("name", name) }
        if let previousVisitorHash { w.string("previousVisitorHash", previousVisitorHash) }
        if let properties = objects.properties { w.raw("properties", properties) }
        w.string("receivedAt", ISO8601.format(receivedAt))
        w.string("timestamp", ISO8601.format(timestamp))
        w.string("type", type.rawValue)
        w.string("visitorHash", visitorHash)
        w.close()
        return w.out
    }
}

extension HydratedEvent.Enrichment {
    /// The enrichment's compact JSON, keys sorted: equal to `jsonValue.serialized()`.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        var w = SortedObjectWriter()
        swap(&w.out, &out)
        w.open()
        if let browser { w.string("browser", browser) }
        if let browserVersion { w.string("browserVersion", browserVersion) }
        if let city { w.string("city", city) }
        if let clickIDs { w.value("clickIds", .object(clickIDs.mapValues { .string($0) })) }
        if let country { w.string("country", country) }
        if let device { w.string("device", device) }
        w.raw("isBot", (isBot ? "true" : "false").utf8)
        if let os { w.string("os", os) }
        if let osVersion { w.string("osVersion", osVersion) }
        if let path { w.string("path", path) }
        if let referrer { w.string("referrer", referrer) }
        if let referrerSource { w.string("referrerSource", referrerSource) }
        if let region { w.string("region", region) }
        if let url { w.string("url", url) }
        if let utmCampaign { w.string("utmCampaign", utmCampaign) }
        if let utmContent { w.string("utmContent", utmContent) }
        if let utmMedium { w.string("utmMedium", utmMedium) }
        if let utmSource { w.string("utmSource", utmSource) }
        if let utmTerm { w.string("utmTerm", utmTerm) }
        w.close()
        swap(&w.out, &out)
    }
}

/// Writes one JSON object whose keys the caller gives in sorted order.
struct SortedObjectWriter {
    var out: [UInt8] = []
    private var first = true

    mutating func open() { out.append(123) }
    mutating func close() { out.append(125) }

    /// Writes `,"key":` (no comma before the first) with one append: five appends of a
    /// byte or two each were a tenth of writing an event's enrichment.
    mutating func key(_ key: StaticString) {
        let comma = first ? 0 : 1
        first = false
        let n = key.utf8CodeUnitCount
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: n + 4) { buffer in
            buffer[0] = 44
            buffer[comma] = 34
            UnsafeMutableRawPointer(buffer.baseAddress! + comma + 1).copyMemory(from: key.utf8Start, byteCount: n)
            buffer[comma + 1 + n] = 34
            buffer[comma + 2 + n] = 58
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[0..<(comma + 3 + n)]))
        }
    }

    mutating func string(_ k: StaticString, _ value: String) {
        key(k)
        JSONValue.writeString(value, into: &out)
    }

    mutating func value(_ k: StaticString, _ value: JSONValue) {
        key(k)
        value.write(into: &out)
    }

    mutating func raw(_ k: StaticString, _ bytes: some Collection<UInt8>) {
        key(k)
        out.append(contentsOf: bytes)
    }
}
