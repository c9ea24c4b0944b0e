import ServiceLifecycle
import TributaryRuntime

/// Builds the `aggregator` daemon's own services from its context (testable without `main`).
public enum AggregatorBuilder {
    /// The services the daemon runs besides the admin endpoint and the heartbeat.
    /// The pipeline stage itself is built by its own issue; until then the daemon
    /// migrates its schema, serves its admin endpoint and reports heartbeats.
    public static func services(context: DaemonContext) throws -> [any Service] {
        []
    }
}
