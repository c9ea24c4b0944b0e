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

extension RawBatchMessage {
    /// The message as JSON, the same as `TributaryJSON.encode(self)` writes it (sorted keys,
    /// absent optionals left out, ISO-8601 time), written straight to bytes: the Foundation
    /// encoder escapes the payload a character at a time, which was a fifth of the
    /// collector's CPU under load.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(payload.utf8.count * 9 / 8 + 256)
        func raw(_ text: StaticString) {
            out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
        raw(#"{"batchId":"#)
        out.append(contentsOf: String(batchID).utf8)
        if let clientIP {
            raw(#","clientIp":"#)
            JSONValue.writeString(clientIP, into: &out)
        }
        raw(#","eventCount":"#)
        out.append(contentsOf: String(eventCount).utf8)
        raw(#","payload":"#)
        JSONValue.writeString(payload, into: &out)
        raw(#","receivedAt":"#)
        JSONValue.writeString(ISO8601.format(receivedAt), into: &out)
        raw(#","siteId":"#)
        out.append(contentsOf: String(siteID).utf8)
        if let userAgent {
            raw(#","userAgent":"#)
            JSONValue.writeString(userAgent, into: &out)
        }
        raw(#","version":"#)
        out.append(contentsOf: String(version).utf8)
        out.append(125)
        return out
    }
}
