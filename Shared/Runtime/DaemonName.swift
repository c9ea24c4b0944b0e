/// The five daemons, with the names that appear in config keys, roles, schemas and
/// heartbeats.
public enum DaemonName: String, Sendable, CaseIterable {
    case collector
    case hydration
    case aggregator
    case forwarder
    case healthChecker = "health-checker"

    /// The config section of this daemon's own keys (`collector`, …, `healthChecker`).
    public var configSection: String {
        self == .healthChecker ? "healthChecker" : rawValue
    }

    /// The prefix of environment variables that override this daemon's own keys, e.g.
    /// `TRIBUTARY_HEALTH_CHECKER` (then `_ADMIN_PORT` for `healthChecker.admin.port`).
    public var environmentPrefix: String {
        self == .healthChecker ? "TRIBUTARY_HEALTH_CHECKER" : "TRIBUTARY_" + rawValue.uppercased()
    }

    /// The PostgreSQL schema the daemon owns.
    public var schema: String {
        self == .healthChecker ? "health" : rawValue
    }

    /// Whether the daemon's queue workers pause while maintenance mode is on (the
    /// collector keeps accepting; the health-checker keeps watching, silenced).
    public var pausesForMaintenance: Bool {
        self == .hydration || self == .aggregator || self == .forwarder
    }

    /// The PostgreSQL role the daemon connects as by default.
    public var defaultRole: String { "tributary_" + schema }

    /// The default size of the daemon's PostgreSQL pool (`<daemon>.postgres.poolSize`):
    /// hydration's turns (`hydration.concurrency`, default 4) each hold a connection for a
    /// transaction, so it gets two more for its sinks' refresh and partition job.
    public var defaultPoolSize: Int {
        self == .hydration ? 6 : 4
    }

    /// The default port of the daemon's admin endpoint (`/healthz`, `/readyz`, `/metrics`).
    public var defaultAdminPort: Int {
        switch self {
        case .collector: return 9101
        case .hydration: return 9102
        case .aggregator: return 9103
        case .forwarder: return 9104
        case .healthChecker: return 9105
        }
    }
}
