import Foundation

/// A Segment `/v1/batch` body: the events and the fields shared by the whole batch.
public struct Batch: Sendable, Codable, Hashable {
    public var batch: [JSONValue]
    public var sentAt: String?
    public var context: [String: JSONValue]?
    public var writeKey: String?

    public init(batch: [JSONValue], sentAt: String? = nil, context: [String: JSONValue]? = nil, writeKey: String? = nil) {
        self.batch = batch
        self.sentAt = sentAt
        self.context = context
        self.writeKey = writeKey
    }
}
