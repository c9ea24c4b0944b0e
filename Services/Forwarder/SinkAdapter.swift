import Foundation
import TributaryHTTP
import TributaryModels

/// One event on its way to a sink: the hydrated event's JSON (docs/queues.md) with its site.
struct ForwardEvent: Sendable {
    var siteID: Int64
    var eventID: Int64
    var messageID: String
    /// The hydrated event's JSON object.
    var json: [String: JSONValue]
    /// About how many bytes the event takes as JSON (for the requests' byte limits).
    var approximateBytes = 0

    /// The event as stored in retries and dead letters: its JSON with `siteId`.
    var storedText: String {
        var o = json
        o["siteId"] = .int(siteID)
        return JSONValue.object(o).jsonText
    }

    /// Reads an event back from ``storedText``.
    static func parse(stored text: String) -> ForwardEvent? {
        guard let value = try? JSONValue.parse(Array(text.utf8)), var o = value.objectValue,
              case .int(let site)? = o["siteId"] else { return nil }
        o["siteId"] = nil
        var event = ForwardEvent(object: o, siteID: site)
        event?.approximateBytes = text.utf8.count
        return event
    }

    init?(object: [String: JSONValue], siteID: Int64) {
        guard case .int(let id)? = object["eventId"], let messageID = object["messageId"]?.stringValue else { return nil }
        self.siteID = siteID
        self.eventID = id
        self.messageID = messageID
        self.json = object
    }

    var type: String { json["type"]?.stringValue ?? "" }
    var name: String? { json["name"]?.stringValue }
    var timestamp: String? { json["timestamp"]?.stringValue }
    var enrichment: [String: JSONValue] { json["enrichment"]?.objectValue ?? [:] }
}

/// What became of one request's events.
enum DeliveryResult: Sendable {
    /// The sink took every event.
    case delivered(status: Int?)
    /// The sink took some and refused the others for good (index in the request → reason).
    case partial(status: Int, rejected: [Int: String], response: String)
    /// A transient failure (5xx, 429, 408, timeout, connection): try again later.
    case retry(status: Int?, error: String, retryAfter: Double?, response: String?)
    /// A permanent refusal (other 4xx, a bad secret): dead-letter at once.
    case rejected(status: Int?, error: String, response: String?)
    /// Not delivered and not retried (statsd: late metrics are worse than none).
    case dropped(error: String)
}

/// What an adapter may use to deliver.
struct DeliveryContext: Sendable {
    var http: HTTPClient
    var outbound: OutboundGuard
    var maxResponseBytes: Int
}

/// A kind of sink: how a batch of events is delivered to it. Adding a sink type is one
/// new file implementing this protocol (and its case in ``SinkType`` and ``SinkAdapters``).
protocol SinkAdapter: Sendable {
    /// The URL schemes this type's sinks use.
    var schemes: Set<String> { get }
    /// Checks a secret file's contents when a sink is added or changed; throws why it is unusable.
    func validate(secret: String?) throws
    /// Delivers `events` (at most the sink's batch size and byte limit) and says what became of them.
    func deliver(_ events: [ForwardEvent], sink: Sink, secret: String?, context: DeliveryContext) async -> DeliveryResult
}

/// The adapter of each sink type.
enum SinkAdapters {
    static func adapter(for type: SinkType) -> any SinkAdapter {
        switch type {
        case .webhook: WebhookSink()
        case .mixpanel: MixpanelSink()
        case .segment: SegmentSink()
        case .statsd: StatsdSink()
        }
    }
}

/// A sink reached over HTTP: builds one request per batch; the shared part checks the
/// destination, sends, and classifies the answer.
protocol HTTPSinkAdapter: SinkAdapter {
    func request(for events: [ForwardEvent], sink: Sink, secret: String?) throws -> HTTPClientRequest
    /// Reads a response; the default takes 2xx as delivered and classifies the rest.
    func interpret(_ response: HTTPClientResponse, events: [ForwardEvent]) -> DeliveryResult
}

struct SinkConfigurationError: Error, CustomStringConvertible {
    var description: String
}

extension HTTPSinkAdapter {
    var schemes: Set<String> { ["http", "https"] }

    func deliver(_ events: [ForwardEvent], sink: Sink, secret: String?, context: DeliveryContext) async -> DeliveryResult {
        var request: HTTPClientRequest
        do {
            request = try self.request(for: events, sink: sink, secret: secret)
        } catch {
            return .retry(status: nil, error: "cannot build the request: \(error)", retryAfter: nil, response: nil)
        }
        do {
            let target = try await context.outbound.check(sink.url, schemes: schemes, allowPrivate: sink.allowPrivateNetwork)
            request.resolve = [target.curlResolve]
        } catch {
            return .retry(status: nil, error: "refused: \(error)", retryAfter: nil, response: nil)
        }
        request.timeoutMs = sink.limits.timeoutMs
        request.maximumResponseBytes = context.maxResponseBytes
        do {
            return interpret(try await context.http.send(request), events: events)
        } catch {
            return .retry(status: nil, error: "\(error.code)", retryAfter: nil, response: nil)
        }
    }

    func interpret(_ response: HTTPClientResponse, events: [ForwardEvent]) -> DeliveryResult {
        HTTPOutcome.classify(response)
    }
}

/// The common reading of an HTTP answer.
enum HTTPOutcome {
    static func classify(_ response: HTTPClientResponse) -> DeliveryResult {
        let status = response.status
        let body = excerpt(response.body)
        switch status {
        case 200..<300: return .delivered(status: status)
        case 408, 425, 429, 500...599:
            return .retry(status: status, error: "HTTP \(status)", retryAfter: retryAfter(response.header("retry-after")),
                          response: body)
        default: return .rejected(status: status, error: "HTTP \(status)", response: body)
        }
    }

    /// The first 2 KB of a response body, for the attempt log and dead letters.
    static func excerpt(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(2048), as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "")
    }

    /// Seconds from a Retry-After header: delta-seconds or an HTTP date; capped at a day.
    static func retryAfter(_ value: String?) -> Double? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value), seconds >= 0 { return min(seconds, 86_400) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return min(max(date.timeIntervalSinceNow, 0), 86_400)
    }
}
