/// Fast JSON for the hydrated messages: the same keys and values as their `Codable`
/// conformance (docs/queues.md), built as a ``JSONValue`` and serialised directly, which
/// is several times cheaper than `JSONEncoder` on the hydration hot path.
extension HydratedEvent {
    public var jsonValue: JSONValue {
        var o: [String: JSONValue] = [
            "eventId": .int(eventID), "messageId": .string(messageID), "type": .string(type.rawValue),
            "timestamp": .string(ISO8601.format(timestamp)), "receivedAt": .string(ISO8601.format(receivedAt)),
            "visitorHash": .string(visitorHash), "enrichment": enrichment.jsonValue,
        ]
        if let previousVisitorHash { o["previousVisitorHash"] = .string(previousVisitorHash) }
        if let name { o["name"] = .string(name) }
        if let userID { o["userId"] = .string(userID) }
        if let anonymousID { o["anonymousId"] = .string(anonymousID) }
        if let originalTimestamp { o["originalTimestamp"] = .string(originalTimestamp) }
        if let sentAt { o["sentAt"] = .string(sentAt) }
        if let properties { o["properties"] = .object(properties) }
        if let traits { o["traits"] = .object(traits) }
        if let context { o["context"] = .object(context) }
        if let integrations { o["integrations"] = .object(integrations) }
        if let metric { o["metric"] = metric.jsonValue }
        return .object(o)
    }
}

extension HydratedEvent.Enrichment {
    public var jsonValue: JSONValue {
        var o: [String: JSONValue] = ["isBot": .bool(isBot)]
        let fields: [(String, String?)] = [
            ("country", country), ("region", region), ("city", city), ("browser", browser),
            ("browserVersion", browserVersion), ("os", os), ("osVersion", osVersion), ("device", device), ("url", url),
            ("path", path), ("referrer", referrer), ("referrerSource", referrerSource), ("utmSource", utmSource),
            ("utmMedium", utmMedium), ("utmCampaign", utmCampaign), ("utmTerm", utmTerm), ("utmContent", utmContent),
        ]
        for (key, value) in fields { if let value { o[key] = .string(value) } }
        if let clickIDs { o["clickIds"] = .object(clickIDs.mapValues { .string($0) }) }
        return .object(o)
    }
}

extension HydratedEvent.Metric {
    public var jsonValue: JSONValue {
        .object(["kind": .string(kind.rawValue), "value": .double(value), "tags": .object(tags.mapValues { .string($0) })])
    }
}

extension HydratedBatchMessage {
    /// The message's JSON bytes from its events' bytes, already serialised (so one event
    /// sent to several queues is serialised once): the same bytes as ``serialized()``.
    public static func serialized(batchID: Int64, siteID: Int64, sinkID: Int64?, eventBytes: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(eventBytes.reduce(96) { $0 + $1.count + 1 })
        out.append(contentsOf: #"{"batchId":\#(batchID),"events":["#.utf8)
        for (i, bytes) in eventBytes.enumerated() {
            if i > 0 { out.append(0x2C) }
            out.append(contentsOf: bytes)
        }
        out.append(contentsOf: "],".utf8)
        if let sinkID { out.append(contentsOf: #""sinkId":\#(sinkID),"#.utf8) }
        out.append(contentsOf: #""siteId":\#(siteID),"version":1}"#.utf8)
        return out
    }

    /// The message's JSON bytes, as `TributaryJSON.encode` would give (keys sorted).
    public func serialized() -> [UInt8] {
        var o: [String: JSONValue] = [
            "version": .int(Int64(version)), "batchId": .int(batchID), "siteId": .int(siteID),
            "events": .array(events.map(\.jsonValue)),
        ]
        if let sinkID { o["sinkId"] = .int(sinkID) }
        return JSONValue.object(o).serialized()
    }
}
