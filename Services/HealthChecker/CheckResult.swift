import Foundation
import TributaryModels

/// The outcome of one check in one round.
public struct CheckResult: Sendable, Hashable {
    public enum Status: String, Sendable, Codable {
        case ok
        case failing
        /// The check could not run (what it reads is unreachable); neither a pass nor a failure.
        case unknown
    }

    /// A stable name, e.g. `heartbeat:hydration`, `backlog:hydrate`, `postgres`.
    public var name: String
    /// The kind of check; names its runbook (`docs/runbooks/<kind>.md`).
    public var kind: CheckKind
    public var status: Status
    /// One line for people.
    public var summary: String
    /// The figures behind the summary (and the commands that fix it, where there are any).
    public var detail: [String: JSONValue]
    /// The check whose failure explains this one (PostgreSQL down, a daemon stopped):
    /// while that one fails, this one is grouped under it and notifies nobody itself.
    public var cause: String?

    public init(name: String, kind: CheckKind, status: Status, summary: String,
                detail: [String: JSONValue] = [:], cause: String? = nil) {
        self.name = name
        self.kind = kind
        self.status = status
        self.summary = summary
        self.detail = detail
        self.cause = cause
    }

    static func ok(_ name: String, _ kind: CheckKind, _ summary: String, _ detail: [String: JSONValue] = [:]) -> CheckResult {
        CheckResult(name: name, kind: kind, status: .ok, summary: summary, detail: detail)
    }

    static func failing(_ name: String, _ kind: CheckKind, _ summary: String, _ detail: [String: JSONValue] = [:],
                        cause: String? = nil) -> CheckResult {
        CheckResult(name: name, kind: kind, status: .failing, summary: summary, detail: detail, cause: cause)
    }

    static func unknown(_ name: String, _ kind: CheckKind, _ summary: String, cause: String?) -> CheckResult {
        CheckResult(name: name, kind: kind, status: .unknown, summary: summary, cause: cause)
    }
}

/// Every kind of check, each with a runbook in docs/runbooks/.
public enum CheckKind: String, Sendable, CaseIterable, Codable {
    case postgres
    case redis
    case heartbeat
    case stalled
    case job
    case anomaly
    case backlog
    case orphaned
    case canary
    case delivery
    case tieHydration = "tie-hydration"
    case tieAggregator = "tie-aggregator"
    case tieForwarder = "tie-forwarder"
    case sequences
    case partitions
    case connections
    case redisMemory = "redis-memory"
    case spool
    case disk

    /// The runbook's file name.
    public var runbook: String { rawValue + ".md" }

    /// Root causes: while one of these fails, every other failing check is grouped under it.
    public var isDependency: Bool { self == .postgres || self == .redis }
}
