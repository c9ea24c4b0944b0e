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
            // By length first: a switch over the names compared the key with each in turn
            // (a call per mismatch), and the common members came late in the list.
            switch key.utf8.count {
            case 4:
                if key == "type" { fields.type = try reader.value(); return }
                if key == "name" { fields.name = try reader.value(); return }
                if key == "kind" { fields.kind = try reader.value(); return }
                if key == "tags" { fields.tags = try reader.value(); return }
            case 5:
                if key == "event" { fields.event = try reader.value(); return }
                if key == "value" { fields.value = try reader.value(); return }
            case 6:
                if key == "userId" { fields.userId = try reader.value(); return }
                if key == "traits" { fields.traits = try reader.value(); return }
                if key == "sentAt" { fields.sentAt = try reader.value(); return }
            case 7:
                if key == "context" { fields.context = try reader.value(); return }
                if key == "groupId" { fields.groupId = try reader.value(); return }
            case 8:
                if key == "category" { fields.category = try reader.value(); return }
            case 9:
                if key == "messageId" { fields.messageId = try reader.value(); return }
                if key == "timestamp" { fields.timestamp = try reader.value(); return }
            case 10:
                if key == "properties" { fields.properties = try reader.value(); return }
                if key == "previousId" { fields.previousId = try reader.value(); return }
            case 11:
                if key == "anonymousId" { fields.anonymousId = try reader.value(); return }
            case 12:
                if key == "integrations" { fields.integrations = try reader.value(); return }
            case 17:
                if key == "originalTimestamp" { fields.originalTimestamp = try reader.value(); return }
            default:
                break
            }
            try reader.skip()
        }
        return fields
    }
}
