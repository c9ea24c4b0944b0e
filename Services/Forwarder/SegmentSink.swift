import Foundation
import TributaryHTTP
import TributaryModels

/// Mirrors events to any Segment-compatible HTTP endpoint (Segment, RudderStack, another
/// Tributary collector): `POST <url>` with `{"batch":[…],"sentAt":…}` and the write key
/// as HTTP Basic user. Events keep their messageId, original timestamp, ids, properties,
/// traits and context, so the receiving pipeline deduplicates a redelivery.
struct SegmentSink: HTTPSinkAdapter {
    func validate(secret: String?) throws {
        guard let secret, !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SinkConfigurationError(description: "a segment sink needs --secret-file holding the destination's write key")
        }
    }

    /// The Segment message for a hydrated event.
    static func message(_ event: ForwardEvent) -> JSONValue {
        let j = event.json
        var o: [String: JSONValue] = ["type": .string(event.type), "messageId": .string(event.messageID)]
        for key in ["userId", "anonymousId", "properties", "traits", "context", "integrations", "sentAt"] {
            if let value = j[key] { o[key] = value }
        }
        if let timestamp = event.timestamp { o["timestamp"] = .string(timestamp) }
        if let name = event.name { o[event.type == "track" ? "event" : "name"] = .string(name) }
        return .object(o)
    }

    func request(for events: [ForwardEvent], sink: Sink, secret: String?) throws -> HTTPClientRequest {
        let key = (secret ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let body = JSONValue.object([
            "batch": .array(events.map(Self.message)), "sentAt": .string(ISO8601.format(Date())),
        ]).serialized()
        return HTTPClientRequest(method: "POST", url: sink.url, headers: [
            ("Content-Type", "application/json"),
            ("User-Agent", "Tributary-Forwarder/1"),
            ("Authorization", "Basic " + Data("\(key):".utf8).base64EncodedString()),
        ], body: body)
    }
}
