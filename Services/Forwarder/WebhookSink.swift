import Crypto
import Foundation
import TributaryHTTP
import TributaryModels

/// POSTs batches of events as JSON, signed as the Standard Webhooks specification says:
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
/// "id.timestamp.body">`), so receivers verify with that spec's libraries.
///
/// The body is `{"type":"tributary.events","timestamp":…,"data":{"events":[…]}}`; each
/// event is the hydrated event (docs/queues.md) with its `siteId`, and its `messageId` is
/// the idempotency key. The webhook id is derived from the events' message ids, so the
/// same batch sent again carries the same id.
struct WebhookSink: HTTPSinkAdapter {
    func validate(secret: String?) throws {
        guard let secret else { throw SinkConfigurationError(description: "a webhook sink needs --secret-file (a whsec_… secret)") }
        _ = try Self.key(secret)
    }

    /// The signing key: the base64 after the `whsec_` prefix (the prefix is optional).
    static func key(_ secret: String) throws -> SymmetricKey {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        let encoded = trimmed.hasPrefix("whsec_") ? String(trimmed.dropFirst(6)) : trimmed
        guard let bytes = Data(base64Encoded: encoded), bytes.count >= 16 else {
            throw SinkConfigurationError(description: "the webhook secret must be whsec_ followed by base64 of at least 16 bytes")
        }
        return SymmetricKey(data: bytes)
    }

    /// `v1,<signature>` for a message id, a Unix timestamp and a body.
    static func signature(id: String, timestamp: Int, body: [UInt8], key: SymmetricKey) -> String {
        var signed = Array("\(id).\(timestamp).".utf8)
        signed.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return "v1," + Data(mac).base64EncodedString()
    }

    /// A stable id for a batch: `msg_` and a hash of the sink and the events' message ids.
    static func messageID(sink: Int64, events: [ForwardEvent]) -> String {
        var input = Array("\(sink)".utf8)
        for event in events {
            input.append(0x0A)
            input.append(contentsOf: "\(event.siteID)/\(event.messageID)".utf8)
        }
        return "msg_" + SHA256.hash(data: input).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    func request(for events: [ForwardEvent], sink: Sink, secret: String?) throws -> HTTPClientRequest {
        let key = try Self.key(secret ?? "")
        let now = Date()
        let body = JSONValue.object([
            "type": .string("tributary.events"),
            "timestamp": .string(ISO8601.format(now)),
            "data": .object(["events": .array(events.map { event in
                var o = event.json
                o["siteId"] = .int(event.siteID)
                return .object(o)
            })]),
        ]).serialized()
        let id = Self.messageID(sink: sink.id, events: events)
        let timestamp = Int(now.timeIntervalSince1970)
        return HTTPClientRequest(method: "POST", url: sink.url, headers: [
            ("Content-Type", "application/json"),
            ("User-Agent", "Tributary-Forwarder/1"),
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", Self.signature(id: id, timestamp: timestamp, body: body, key: key)),
        ], body: body)
    }
}
