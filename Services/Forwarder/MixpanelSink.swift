import CompressNIO
import Crypto
import Foundation
import NIOCore
import TributaryHTTP
import TributaryModels

/// Mixpanel's import API (`POST https://api.mixpanel.com/import?strict=1&project_id=…`):
/// a gzipped JSON array of `{"event":…,"properties":{…}}` with the original event time
/// (`time`, ms), `distinct_id`, and `$insert_id` from the messageId so Mixpanel drops a
/// redelivery. Authenticated with the project secret (or `user:secret` of a service account).
/// With `strict=1`, a 400 lists the records refused; the others were imported.
struct MixpanelSink: HTTPSinkAdapter {
    func validate(secret: String?) throws {
        guard let secret, !secret.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw SinkConfigurationError(description: "a mixpanel sink needs --secret-file holding the project secret")
        }
    }

    /// Mixpanel's `$insert_id`: the messageId if it fits (at most 36 letters, digits, `-`
    /// and `_`), else a hash of it.
    static func insertID(_ messageID: String) -> String {
        if (1...36).contains(messageID.utf8.count),
           messageID.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }) {
            return messageID
        }
        return SHA256.hash(data: Array(messageID.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    static func record(_ event: ForwardEvent) -> JSONValue {
        let j = event.json
        var p: [String: JSONValue] = j["properties"]?.objectValue ?? [:]
        let time = event.timestamp.flatMap(ISO8601.parse) ?? Date()
        p["time"] = .int(Int64((time.timeIntervalSince1970 * 1000).rounded()))
        p["$insert_id"] = .string(insertID(event.messageID))
        let distinct = j["userId"]?.stringValue ?? j["anonymousId"]?.stringValue ?? j["visitorHash"]?.stringValue ?? ""
        p["distinct_id"] = .string(distinct)
        if let user = j["userId"]?.stringValue { p["$user_id"] = .string(user) }
        if let device = j["anonymousId"]?.stringValue { p["$device_id"] = .string(device) }
        let e = event.enrichment
        let mapped: [(String, String)] = [
            ("browser", "$browser"), ("browserVersion", "$browser_version"), ("os", "$os"), ("city", "$city"),
            ("region", "$region"), ("country", "mp_country_code"), ("url", "$current_url"), ("referrer", "$referrer"),
            ("utmSource", "utm_source"), ("utmMedium", "utm_medium"), ("utmCampaign", "utm_campaign"),
            ("utmTerm", "utm_term"), ("utmContent", "utm_content"),
        ]
        for (from, to) in mapped { if let v = e[from], p[to] == nil { p[to] = v } }
        p["tributary_site_id"] = .int(event.siteID)
        let name: String
        switch event.type {
        case "page": name = "Loaded a Page"
        case "screen": name = "Loaded a Screen"
        default: name = event.name ?? "(unnamed)"
        }
        if event.type != "track", let page = event.name { p["name"] = .string(page) }
        return .object(["event": .string(name), "properties": .object(p)])
    }

    func request(for events: [ForwardEvent], sink: Sink, secret: String?) throws -> HTTPClientRequest {
        let secret = (secret ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let credentials = secret.contains(":") ? secret : secret + ":"
        let json = JSONValue.array(events.map(Self.record)).serialized()
        var buffer = ByteBuffer(bytes: json)
        let compressed = try buffer.compress(with: .gzip())
        return HTTPClientRequest(method: "POST", url: sink.url, headers: [
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
            ("Accept", "application/json"),
            ("User-Agent", "Tributary-Forwarder/1"),
            ("Authorization", "Basic " + Data(credentials.utf8).base64EncodedString()),
        ], body: Array(compressed.readableBytesView))
    }

    func interpret(_ response: HTTPClientResponse, events: [ForwardEvent]) -> DeliveryResult {
        guard response.status == 400, let value = try? JSONValue.parse(response.body), let o = value.objectValue,
              case .array(let failed)? = o["failed_records"], !failed.isEmpty else {
            return HTTPOutcome.classify(response)
        }
        var rejected: [Int: String] = [:]
        for record in failed {
            guard let r = record.objectValue, case .int(let index)? = r["index"], (0..<events.count).contains(Int(index)) else { continue }
            let field = r["field"]?.stringValue.map { "\($0): " } ?? ""
            rejected[Int(index)] = field + (r["message"]?.stringValue ?? "refused by Mixpanel")
        }
        guard !rejected.isEmpty else { return HTTPOutcome.classify(response) }
        return .partial(status: 400, rejected: rejected, response: HTTPOutcome.excerpt(response.body))
    }
}
