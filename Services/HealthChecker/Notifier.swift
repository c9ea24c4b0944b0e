import Foundation
import Logging
import Metrics
import Synchronization
import TributaryHTTP
import TributaryModels
import TributaryRuntime

/// Sends notices to the receivers over HTTP, each checked against private networks
/// (unless the receiver allows them) and pinned to the checked addresses. A failed send
/// is retried in the following rounds (bounded), oldest first.
final class Notifier: Sendable {
    /// The outcome of one send, for the record.
    struct Delivery: Sendable {
        var notice: Notice
        var receiver: String
        var ok: Bool
        var status: Int?
        var error: String?
        var at: Date
    }

    private struct Pending: Sendable {
        var notice: Notice
        var receiver: Receiver
        var attempts: Int
    }

    let http: HTTPClient
    let outbound: OutboundGuard
    let timeoutMs: Int
    let maxPending: Int
    let runbookBase: String
    let source: String
    let logger: Logger
    private let pending = Mutex<[Pending]>([])
    private let sent = Counter(label: "tributary_health_notifications_total", dimensions: [("outcome", "sent")])
    private let failed = Counter(label: "tributary_health_notifications_total", dimensions: [("outcome", "failed")])

    init(http: HTTPClient, outbound: OutboundGuard, timeoutMs: Int, maxPending: Int, runbookBase: String, logger: Logger) {
        self.http = http
        self.outbound = outbound
        self.timeoutMs = timeoutMs
        self.maxPending = maxPending
        self.runbookBase = runbookBase
        self.source = ProcessInfo.processInfo.hostName
        self.logger = logger
    }

    /// Sends `notices` to every receiver that takes their severity, and retries earlier
    /// failures; returns every send's outcome.
    func deliver(_ notices: [Notice], to receivers: [Receiver]) async -> [Delivery] {
        var work = pending.withLock { p in defer { p = [] }; return p }
        for notice in notices {
            for receiver in receivers where receiver.accepts(notice.severity) || notice.kind == .test {
                work.append(Pending(notice: notice, receiver: receiver, attempts: 0))
            }
        }
        var deliveries: [Delivery] = []
        var retry: [Pending] = []
        for var item in work {
            let outcome = await send(item.notice, to: item.receiver)
            deliveries.append(outcome)
            if outcome.ok {
                sent.increment()
            } else {
                failed.increment()
                item.attempts += 1
                logger.warning("notification failed; will retry", metadata: [
                    "receiver": "\(item.receiver.name)", "check": "\(item.notice.check)", "error": "\(outcome.error ?? "")"])
                if item.attempts < 20 && item.notice.kind != .test { retry.append(item) }
            }
        }
        pending.withLock { p in
            p = Array((retry + p).suffix(maxPending))
        }
        return deliveries
    }

    /// Sends one notice to one receiver now.
    func send(_ notice: Notice, to receiver: Receiver) async -> Delivery {
        let runbook = NoticePayload.runbook(notice.checkKind, base: runbookBase)
        var result = Delivery(notice: notice, receiver: receiver.name, ok: false, at: Date())
        do {
            let body: JSONValue
            switch receiver.type {
            case .slack:
                body = NoticePayload.slack(notice, runbook: runbook, source: source)
            case .webhook:
                body = NoticePayload.webhook(notice, runbook: runbook, source: source)
            case .pagerduty:
                guard let file = receiver.routingKeyFile else { throw Refused("the receiver has no --routing-key-file") }
                let key: String
                do {
                    key = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                } catch {
                    throw Refused("cannot read the routing key file \(file)")
                }
                body = NoticePayload.pagerDuty(notice, routingKey: key, runbook: runbook, source: source)
            }
            let target = try await outbound.check(receiver.url, schemes: ["http", "https"], allowPrivate: receiver.allowPrivateNetwork)
            var request = HTTPClientRequest(method: "POST", url: receiver.url,
                                            headers: [("Content-Type", "application/json"),
                                                      ("User-Agent", "tributary-health-checker/\(TributaryVersion.current)")],
                                            body: body.serialized(), timeoutMs: timeoutMs, maximumResponseBytes: 65_536)
            request.resolve = [target.curlResolve]
            let response = try await http.send(request)
            result.status = response.status
            if (200..<300).contains(response.status) {
                result.ok = true
            } else {
                result.error = "HTTP \(response.status): \(String(decoding: response.body.prefix(300), as: UTF8.self))"
            }
        } catch {
            result.error = "\(error)"
        }
        return result
    }
}

struct Refused: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
