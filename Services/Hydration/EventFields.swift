import TributaryModels

/// The members of one raw event that validation reads, each as the client sent it
/// (`nil` when absent). Read straight from the batch's text by ``read(_:)`` without a
/// dictionary for the event itself, or taken from an already parsed object; members
/// nothing reads are checked and skipped. A repeated member keeps its last value, as a
/// parsed object would.
public struct EventFields: Sendable {
    public var type: JSONValue?
    public var messageId: JSONValue?
    public var userId: JSONValue?
    public var anonymousId: JSONValue?
    public var groupId: JSONValue?
    public var previousId: JSONValue?
    public var event: JSONValue?
    public var name: JSONValue?
    public var category: JSONValue?
    public var properties: JSONValue?
    public var traits: JSONValue?
    public var context: JSONValue?
    public var integrations: JSONValue?
    public var timestamp: JSONValue?
    public var originalTimestamp: JSONValue?
    public var sentAt: JSONValue?
    public var kind: JSONValue?
    public var value: JSONValue?
    public var tags: JSONValue?
    /// `context` kept as the client's text, with the members enrichment reads, instead of
    /// `context` as a tree (see ``RawContext``); set only by ``read(_:)``.
    public var rawContext: RawContext?

    public init() {}

    /// The members of a parsed event object.
    public init(_ object: [String: JSONValue]) {
        type = object["type"]
        messageId = object["messageId"]
        userId = object["userId"]
        anonymousId = object["anonymousId"]
        groupId = object["groupId"]
        previousId = object["previousId"]
        event = object["event"]
        name = object["name"]
        category = object["category"]
        properties = object["properties"]
        traits = object["traits"]
        context = object["context"]
        integrations = object["integrations"]
        timestamp = object["timestamp"]
        originalTimestamp = object["originalTimestamp"]
        sentAt = object["sentAt"]
        kind = object["kind"]
        value = object["value"]
        tags = object["tags"]
    }

    /// Reads the members of the event object at the reader's position.
    public static func read(_ reader: inout JSONReader) throws(JSONParseError) -> EventFields {
        var fields = EventFields()
        try reader.members { reader, key throws(JSONParseError) in
            switch key {
            case "type": fields.type = try reader.value()
            case "messageId": fields.messageId = try reader.value()
            case "userId": fields.userId = try reader.value()
            case "anonymousId": fields.anonymousId = try reader.value()
            case "groupId": fields.groupId = try reader.value()
            case "previousId": fields.previousId = try reader.value()
            case "event": fields.event = try reader.value()
            case "name": fields.name = try reader.value()
            case "category": fields.category = try reader.value()
            case "properties": fields.properties = try reader.value()
            case "traits": fields.traits = try reader.value()
            case "context":
                fields.rawContext = nil
                fields.context = nil
                if reader.peek() == 123, let raw = try RawContext.read(&reader) {
                    fields.rawContext = raw
                } else {
                    fields.context = try reader.value()
                }
            case "integrations": fields.integrations = try reader.value()
            case "timestamp": fields.timestamp = try reader.value()
            case "originalTimestamp": fields.originalTimestamp = try reader.value()
            case "sentAt": fields.sentAt = try reader.value()
            case "kind": fields.kind = try reader.value()
            case "value": fields.value = try reader.value()
            case "tags": fields.tags = try reader.value()
            default: try reader.skip()
            }
        }
        return fields
    }
}

/// An event's `context` object as the client wrote it, for storing and sending on as it
/// is: building it as a tree, writing the tree back to JSON and destroying it was a good
/// part of hydration's work per event. Only the members enrichment reads are taken out.
/// Taken only when reading them is unambiguous: no `ip` member (whose value the stored
/// context may have to drop or replace) and no repeated `userAgent`, `page`, `url` or
/// `referrer`; otherwise the context is read as a tree.
public struct RawContext: Sendable {
    /// The object's text, from `{` to `}`.
    public var text: [UInt8]
    /// Whether the object has no members at all.
    public var isEmpty: Bool
    public var userAgent: String?
    public var pageURL: String?
    public var pageReferrer: String?

    /// Reads the object at the reader's position; `nil` (with the reader back before
    /// the object, so the caller can read it as a tree) when it cannot be taken as text.
    static func read(_ reader: inout JSONReader) throws(JSONParseError) -> RawContext? {
        let start = reader.offset()
        let saved = reader
        var raw = RawContext(text: [], isEmpty: true)
        var seen: Set<String> = []
        var simple = true
        func string(_ reader: inout JSONReader) throws(JSONParseError) -> String? {
            if reader.peek() == 34 { return try reader.value().stringValue }
            try reader.skip()
            return nil
        }
        try reader.members { reader, key throws(JSONParseError) in
            raw.isEmpty = false
            switch key {
            case "ip":
                simple = false
                try reader.skip()
            case "userAgent":
                if !seen.insert(key).inserted { simple = false }
                raw.userAgent = try string(&reader)
            case "page":
                if !seen.insert(key).inserted { simple = false }
                raw.pageURL = nil
                raw.pageReferrer = nil
                guard reader.peek() == 123 else {
                    try reader.skip()
                    return
                }
                var inPage: Set<String> = []
                try reader.members { reader, key throws(JSONParseError) in
                    switch key {
                    case "url":
                        if !inPage.insert(key).inserted { simple = false }
                        raw.pageURL = try string(&reader)
                    case "referrer":
                        if !inPage.insert(key).inserted { simple = false }
                        raw.pageReferrer = try string(&reader)
                    default: try reader.skip()
                    }
                }
            default: try reader.skip()
            }
        }
        guard simple else {
            reader = saved
            return nil
        }
        raw.text = reader.text(start..<reader.position)
        return raw
    }
}
