import Foundation

/// An item of the `hydrate` queue: one raw batch as the collector saved it.
///
/// The collector assigns `batchID` before the first durable write, so a replayed or
/// re-sent message carries the same id and every later stage can skip it if applied.
public struct RawBatchMessage: Sendable, Codable, Hashable {
    /// The message format version; this is version 1.
    public var version: Int
    /// The batch id (a ``SnowflakeID``), unique across the pipeline.
    public var batchID: Int64
    /// The site whose write key sent the batch.
    public var siteID: Int64
    /// When the collector received the request.
    public var receivedAt: Date
    /// The client address the collector stamped (after trusted-proxy handling).
    public var clientIP: String?
    /// The request's `User-Agent` header.
    public var userAgent: String?
    /// The number of events in the batch, as the collector counted them.
    public var eventCount: Int
    /// The batch body: a JSON text of the Segment batch shape (`{"batch":[…], …}`).
    public var payload: String

    public init(batchID: Int64, siteID: Int64, receivedAt: Date, clientIP: String?, userAgent: String?,
                eventCount: Int, payload: String) {
        self.version = 1
        self.batchID = batchID
        self.siteID = siteID
        self.receivedAt = receivedAt
        self.clientIP = clientIP
        self.userAgent = userAgent
        self.eventCount = eventCount
        self.payload = payload
    }

    enum CodingKeys: String, CodingKey {
        case version, batchID = "batchId", siteID = "siteId", receivedAt, clientIP = "clientIp", userAgent,
             eventCount, payload
    }
}

extension RawBatchMessage {
    /// Reads a message with the fast JSON parser (the `payload` string can be large;
    /// `JSONDecoder` is several times slower). `nil` if the bytes are not this message.
    public static func parse(_ bytes: some Collection<UInt8>) -> RawBatchMessage? {
        guard let object = (try? JSONValue.parse(bytes))?.objectValue,
              case .int(let batchID)? = object["batchId"], case .int(let siteID)? = object["siteId"],
              let receivedText = object["receivedAt"]?.stringValue, let receivedAt = ISO8601.parse(receivedText),
              case .int(let count)? = object["eventCount"], let payload = object["payload"]?.stringValue
        else { return nil }
        var message = RawBatchMessage(batchID: batchID, siteID: siteID, receivedAt: receivedAt,
                                      clientIP: object["clientIp"]?.stringValue, userAgent: object["userAgent"]?.stringValue,
                                      eventCount: Int(count), payload: payload)
        if case .int(let version)? = object["version"] { message.version = Int(version) }
        return message
    }
}
