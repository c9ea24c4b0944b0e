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
            case "context": fields.context = try reader.value()
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
