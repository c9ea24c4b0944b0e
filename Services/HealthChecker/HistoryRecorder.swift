import Foundation
import Logging
import Synchronization
import TributaryModels
import TributaryPostgres

/// Records incidents, notifications and check transitions in the health schema. Writes
/// wait in memory (bounded) while PostgreSQL is down and go in order once it is back,
/// so alerting never depends on PostgreSQL.
final class HistoryRecorder: Sendable {
    enum Entry: Sendable {
        case opened(check: String, severity: Severity, summary: String, detail: [String: JSONValue], at: Date, silenced: Bool)
        case escalated(check: String, at: Date)
        case resolved(check: String, at: Date)
        case notified(Notifier.Delivery)
        case transition(check: String, status: CheckResult.Status, summary: String, detail: [String: JSONValue], at: Date)
    }

    let postgres: PostgresClient
    let maxPending: Int
    let retentionDays: Int
    let logger: Logger
    private let queue = Mutex<[Entry]>([])
    private let lastStatus = Mutex<[String: CheckResult.Status]>([:])

    init(postgres: PostgresClient, maxPending: Int, retentionDays: Int, logger: Logger) {
        self.postgres = postgres
        self.maxPending = maxPending
        self.retentionDays = retentionDays
        self.logger = logger
    }

    func append(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        queue.withLock { q in
            q += entries
            if q.count > maxPending { q.removeFirst(q.count - maxPending) }
        }
    }

    /// Adds a transition entry for each check whose status changed since the last round.
    func noteTransitions(_ round: CheckRound) {
        let changed: [CheckResult] = lastStatus.withLock { last in
            var changed: [CheckResult] = []
            for r in round.results where r.status != .unknown && last[r.name] != r.status {
                if last[r.name] != nil || r.status != .ok { changed.append(r) }
                last[r.name] = r.status
            }
            return changed
        }
        append(changed.map { .transition(check: $0.name, status: $0.status, summary: $0.summary, detail: $0.detail, at: round.at) })
    }

    /// Writes what is waiting, in order; stops at the first failure and keeps the rest.
    func flush() async {
        let entries = queue.withLock { q in defer { q = [] }; return q }
        var index = 0
        do {
            while index < entries.count {
                try await write(entries[index])
                index += 1
            }
        } catch {
            logger.debug("history write deferred", metadata: ["error": "\(error)"])
            let rest = Array(entries[index...])
            queue.withLock { q in q = Array((rest + q).suffix(maxPending)) }
        }
    }

    private func write(_ entry: Entry) async throws {
        switch entry {
        case .opened(let check, let severity, let summary, let detail, let at, let silenced):
            try await postgres.query("""
                INSERT INTO health.incidents (check_name, severity, summary, detail, opened_at, silenced)
                VALUES ($1, $2, $3, $4::jsonb, $5, $6) ON CONFLICT (check_name) WHERE resolved_at IS NULL DO NOTHING
                """, [check, severity.rawValue, summary, JSONValue.object(detail).jsonText, PostgresTime.format(at), silenced])
        case .escalated(let check, let at):
            try await postgres.query("""
                UPDATE health.incidents SET severity = 'critical', escalated_at = $2 WHERE check_name = $1 AND resolved_at IS NULL
                """, [check, PostgresTime.format(at)])
        case .resolved(let check, let at):
            try await postgres.query("UPDATE health.incidents SET resolved_at = $2 WHERE check_name = $1 AND resolved_at IS NULL",
                                     [check, PostgresTime.format(at)])
        case .notified(let d):
            try await postgres.query("""
                INSERT INTO health.notifications (incident_id, receiver, kind, severity, check_name, sent_at, ok, status, error)
                VALUES ((SELECT incident_id FROM health.incidents WHERE check_name = $4 ORDER BY opened_at DESC LIMIT 1),
                        $1, $2, $3, $4, $5, $6, $7, $8)
                """, [d.receiver, d.notice.kind.rawValue, d.notice.severity.rawValue, d.notice.check, PostgresTime.format(d.at),
                      d.ok, d.status.map(Int64.init), d.error])
        case .transition(let check, let status, let summary, let detail, let at):
            try await postgres.query("""
                INSERT INTO health.check_results (check_name, ran_at, ok, status, summary, detail) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                ON CONFLICT DO NOTHING
                """, [check, PostgresTime.format(at), status == .ok, status.rawValue, summary, JSONValue.object(detail).jsonText])
        }
    }

    /// The incidents open in the health schema (to carry on after a restart).
    func openIncidents() async throws -> [(String, AlertEngine.Incident)] {
        try await postgres.query("""
            SELECT check_name, severity, summary, opened_at, silenced FROM health.incidents WHERE resolved_at IS NULL
            """).rows.map { row in
            let severity = Severity(rawValue: try row.string("severity") ?? "") ?? .warning
            let silenced = try row.bool("silenced") ?? false
            return (try row.string("check_name") ?? "",
                    AlertEngine.Incident(severity: severity, openedAt: try row.date("opened_at") ?? Date(),
                                         summary: try row.string("summary") ?? "", notified: silenced ? nil : severity,
                                         lastNotifiedAt: Date()))
        }
    }

    /// Deletes history past the retention.
    func prune() async throws {
        for (table, column) in [("check_results", "ran_at"), ("notifications", "sent_at")] {
            try await postgres.query("DELETE FROM health.\(table) WHERE \(column) < now() - make_interval(days => $1::int)",
                                     [retentionDays])
        }
        try await postgres.query("""
            DELETE FROM health.incidents WHERE resolved_at < now() - make_interval(days => $1::int)
            """, [retentionDays])
    }
}
