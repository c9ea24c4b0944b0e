import Crypto
import Foundation
import Logging
import ServiceLifecycle
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// Sends a canary event per configured site through the real collector every interval,
/// and follows each one to the end of the pipeline: received (the collector's stamp),
/// stored (hydration's ledger), aggregated (the aggregator's ledger) and delivered (every
/// sink it was routed to), recording each stage's time in `health.canaries`.
///
/// A canary is a `track` event named `tributary_canary` from anonymous id
/// `tributary-canary`; the aggregator leaves it out of the statistics.
struct CanaryService: Service, CustomStringConvertible {
    static let eventName = "tributary_canary"

    let postgres: PostgresClient
    let http: HTTPClient
    let configuration: HealthCheckerConfiguration
    let logger: Logger

    var description: String { "CanaryService" }

    func run() async throws {
        guard !configuration.canaryWriteKeyFiles.isEmpty else {
            // Nothing to send; stay until shutdown (a service that returns stops the daemon).
            while !Task.isShuttingDownGracefully && !Task.isCancelled { try? await gracefulSleep(for: .seconds(3600)) }
            return
        }
        var lastSent = ContinuousClock.now - .seconds(configuration.canaryIntervalSeconds)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if ContinuousClock.now - lastSent >= .seconds(configuration.canaryIntervalSeconds) {
                lastSent = .now
                for file in configuration.canaryWriteKeyFiles { await send(keyFile: file) }
                do { try await prune() } catch {}
            }
            do { try await follow() } catch {
                logger.debug("canary follow-up failed", metadata: ["error": "\(error)"])
            }
            try? await gracefulSleep(for: .milliseconds(Int(min(configuration.canaryIntervalSeconds, 1) * 1000)))
        }
    }

    /// The site a write key belongs to, from the collector's (hashed) keys.
    func site(forKey key: String) async throws -> Int64? {
        let hash = Hex.encode(SHA256.hash(data: Array(key.utf8)))
        return try await postgres.query("""
            SELECT site_id FROM collector.write_keys WHERE key_hash = $1 AND kind = 'write' AND revoked_at IS NULL
            """, [hash]).rows.first?.int("site_id")
    }

    /// Sends one canary for the site of the write key in `keyFile`.
    func send(keyFile: String) async {
        let key: String
        do {
            key = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            logger.error("cannot read a canary write key file", metadata: ["file": "\(keyFile)", "error": "\(error)"])
            return
        }
        guard let site = try? await site(forKey: key) else {
            logger.error("a canary write key belongs to no site (or PostgreSQL is down)", metadata: ["file": "\(keyFile)"])
            return
        }
        let now = Date()
        let messageID = "canary-\(UUID().uuidString.lowercased())"
        let body: JSONValue = .object([
            "batch": .array([.object([
                "type": .string("track"), "event": .string(Self.eventName), "messageId": .string(messageID),
                "anonymousId": .string("tributary-canary"), "timestamp": .string(ISO8601.format(now)),
                "properties": .object(["sentAt": .string(ISO8601.format(now))]),
                "context": .object(["library": .object(["name": .string("tributary-health-checker"),
                                                        "version": .string(TributaryVersion.current)])]),
            ])]),
            "sentAt": .string(ISO8601.format(now)),
        ])
        let auth = Data((key + ":").utf8).base64EncodedString()
        var status: Int?
        var failure: String?
        do {
            let response = try await http.send(HTTPClientRequest(
                method: "POST", url: configuration.canaryCollectorURL + "/v1/batch",
                headers: [("Content-Type", "application/json"), ("Authorization", "Basic \(auth)")],
                body: body.serialized(), timeoutMs: configuration.notifyTimeoutMs, maximumResponseBytes: 65_536))
            status = response.status
            if !(200..<300).contains(response.status) {
                failure = "the collector answered \(response.status): \(String(decoding: response.body.prefix(200), as: UTF8.self))"
            }
        } catch {
            failure = "cannot reach the collector at \(configuration.canaryCollectorURL): \(error)"
        }
        do {
            try await postgres.query("""
                INSERT INTO health.canaries (site_id, message_id, sent_at, send_status, send_error) VALUES ($1, $2, $3, $4, $5)
                """, [site, messageID, PostgresTime.format(now), status.map(Int64.init), failure])
        } catch {
            logger.warning("could not record a canary", metadata: ["error": "\(error)"])
        }
    }

    /// Fills in the stages the open canaries have reached since the last look.
    func follow() async throws {
        try await postgres.query("""
            WITH c AS (
                SELECT c.site_id, c.message_id, m.batch_id, m.first_seen
                FROM health.canaries c JOIN hydration.message_ids m ON m.site_id = c.site_id AND m.message_id = c.message_id
                WHERE c.completed_at IS NULL AND c.send_error IS NULL AND c.sent_at > now() - interval '1 day'),
            s AS (
                SELECT c.site_id, c.message_id, c.first_seen AS received_at, l.applied_at AS stored_at,
                       (l.routed ? 'aggregate') AS to_aggregate,
                       (SELECT count(*) FROM jsonb_object_keys(l.routed) k WHERE k LIKE 'forward:%') AS sinks,
                       a.applied_at AS aggregated_at,
                       (SELECT count(*) FROM forwarder.deliveries d WHERE d.site_id = c.site_id AND d.message_id = c.message_id) AS delivered,
                       (SELECT max(d.delivered_at) FROM forwarder.deliveries d WHERE d.site_id = c.site_id AND d.message_id = c.message_id) AS delivered_at
                FROM c LEFT JOIN hydration.ledger l ON l.site_id = c.site_id AND l.batch_id = c.batch_id
                LEFT JOIN aggregator.ledger a ON a.site_id = c.site_id AND a.batch_id = c.batch_id)
            UPDATE health.canaries h SET received_at = s.received_at, stored_at = s.stored_at,
                   aggregated_at = s.aggregated_at, sinks_expected = s.sinks, sinks_delivered = s.delivered,
                   delivered_at = CASE WHEN s.delivered >= s.sinks AND s.sinks > 0 THEN s.delivered_at END,
                   completed_at = CASE WHEN s.stored_at IS NOT NULL
                                        AND (NOT coalesce(s.to_aggregate, false) OR s.aggregated_at IS NOT NULL)
                                        AND s.delivered >= s.sinks
                                   THEN greatest(s.stored_at, s.aggregated_at, s.delivered_at) END
            FROM s WHERE h.site_id = s.site_id AND h.message_id = s.message_id
            """)
    }

    func prune() async throws {
        try await postgres.query("DELETE FROM health.canaries WHERE sent_at < now() - make_interval(days => $1::int)",
                                 [configuration.canaryRetentionDays])
    }
}

extension PipelineProbe {
    /// One check per canary site: the last canary got through, in time, and the latest
    /// complete one's end-to-end lag is under the limit (per-stage lags in the detail).
    func canaryChecks(now: Date) async throws -> [CheckResult] {
        guard !configuration.canaryWriteKeyFiles.isEmpty else { return [] }
        let rows = try await postgres.query("""
            SELECT DISTINCT ON (site_id) site_id, message_id, sent_at, send_status, send_error, received_at, stored_at,
                   aggregated_at, delivered_at, sinks_expected, sinks_delivered, completed_at,
                   (SELECT max(c2.completed_at) FROM health.canaries c2 WHERE c2.site_id = c.site_id) AS last_completed
            FROM health.canaries c
            WHERE sent_at < $1 OR completed_at IS NOT NULL OR send_error IS NOT NULL
            ORDER BY site_id, sent_at DESC
            """, [PostgresTime.format(now.addingTimeInterval(-configuration.canaryTimeoutSeconds))]).rows
        var results: [CheckResult] = []
        for row in rows {
            let site = try row.int("site_id") ?? 0
            let name = "canary:\(site)"
            let sent = try row.date("sent_at") ?? now
            var detail: [String: JSONValue] = ["messageId": .string(try row.string("message_id") ?? ""),
                                               "sentAt": .string(ISO8601.format(sent))]
            var lags: [String: JSONValue] = [:]
            for (stage, column) in [("received", "received_at"), ("stored", "stored_at"), ("aggregated", "aggregated_at"),
                                    ("delivered", "delivered_at")] {
                if let at = try row.date(column) { lags[stage] = .double((at.timeIntervalSince(sent) * 1000).rounded() / 1000) }
            }
            detail["lagSeconds"] = .object(lags)
            if let error = try row.string("send_error") {
                results.append(.failing(name, .canary, "the canary for site \(site) was not accepted: \(error)", detail,
                                        cause: "heartbeat:collector"))
                continue
            }
            guard let completed = try row.date("completed_at") else {
                // Where it stopped names the stage, and the check whose failure would explain it.
                let (stage, cause) = try row.date("aggregated_at") != nil
                    ? ("aggregated, not delivered to every sink", "heartbeat:forwarder")
                    : try row.date("stored_at") != nil ? ("stored, not aggregated", "stalled:\(QueueName.aggregate)")
                    : ("not stored by hydration", "stalled:\(QueueName.hydrate)")
                results.append(.failing(name, .canary,
                    "the canary sent to site \(site) \(Int(now.timeIntervalSince(sent))) s ago is \(stage)", detail,
                    cause: cause))
                continue
            }
            let lag = completed.timeIntervalSince(sent)
            detail["endToEndSeconds"] = .double((lag * 1000).rounded() / 1000)
            results.append(lag > configuration.canaryMaxLagSeconds
                ? .failing(name, .canary, "end-to-end lag for site \(site) is \(Int(lag)) s (limit \(Int(configuration.canaryMaxLagSeconds)) s)", detail)
                : .ok(name, .canary, "canary for site \(site) went through in \(String(format: "%.1f", lag)) s", detail))
        }
        return results
    }
}
