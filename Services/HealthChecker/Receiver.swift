import Foundation
import TributaryHTTP
import TributaryModels
import TributaryPostgres

/// Where alerts go: a Slack-style incoming webhook, PagerDuty's Events API v2, or a
/// generic JSON webhook. Rows of `health.receivers`; the routing key stays in its file.
struct Receiver: Sendable, Hashable, Codable {
    enum Kind: String, Sendable, CaseIterable, Codable {
        case slack
        case pagerduty
        case webhook
    }

    var id: Int64
    var name: String
    var type: Kind
    var url: String
    var routingKeyFile: String?
    var allowPrivateNetwork: Bool
    var minSeverity: Severity
    var createdAt: Date?

    /// Whether a notice of `severity` goes to this receiver.
    func accepts(_ severity: Severity) -> Bool { severity >= minSeverity }

    var summary: [String: Any] {
        var o: [String: Any] = ["receiverId": id, "name": name, "type": type.rawValue, "url": OutboundGuard.redacted(url),
                                "allowPrivateNetwork": allowPrivateNetwork, "minSeverity": minSeverity.rawValue]
        if let routingKeyFile { o["routingKeyFile"] = routingKeyFile }
        if let createdAt { o["createdAt"] = ISO8601.format(createdAt) }
        return o
    }
}

/// The receivers' rows.
struct ReceiverStore: Sendable {
    /// A copy of the receivers in Redis, so alerts still go out when the health-checker
    /// starts while PostgreSQL is down (the case that most needs them).
    static let cacheKey = "tributary:health:receivers"

    let postgres: PostgresClient

    func all() async throws -> [Receiver] {
        try await postgres.query("""
            SELECT receiver_id, name, type, url, routing_key_file, allow_private_network, min_severity, created_at
            FROM health.receivers ORDER BY receiver_id
            """).rows.map { row in
            Receiver(id: try row.int("receiver_id") ?? 0, name: try row.string("name") ?? "",
                     type: Receiver.Kind(rawValue: try row.string("type") ?? "") ?? .webhook, url: try row.string("url") ?? "",
                     routingKeyFile: try row.string("routing_key_file"),
                     allowPrivateNetwork: try row.bool("allow_private_network") ?? false,
                     minSeverity: Severity(rawValue: try row.string("min_severity") ?? "") ?? .warning,
                     createdAt: try row.date("created_at"))
        }
    }

    func find(_ reference: String) async throws -> Receiver? {
        try await all().first { $0.name == reference || String($0.id) == reference }
    }

    func add(_ r: Receiver) async throws -> Receiver {
        let row = try await postgres.query("""
            INSERT INTO health.receivers (name, type, url, routing_key_file, allow_private_network, min_severity)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING receiver_id, created_at
            """, [r.name, r.type.rawValue, r.url, r.routingKeyFile, r.allowPrivateNetwork, r.minSeverity.rawValue]).rows.first
        var added = r
        added.id = try row?.int("receiver_id") ?? 0
        added.createdAt = try row?.date("created_at")
        return added
    }

    func remove(_ id: Int64) async throws {
        try await postgres.query("DELETE FROM health.receivers WHERE receiver_id = $1", [id])
    }
}
