import Foundation

/// What each daemon instance writes to Redis every few seconds (see docs/queues.md,
/// "Heartbeats"), and what the health-checker reads to know who is alive.
public struct Heartbeat: Sendable, Codable, Hashable {
    /// The daemon: `collector`, `hydration`, `aggregator`, `forwarder` or `health-checker`.
    public var service: String
    /// This instance's id, unique per process (host, pid and a random suffix).
    public var instance: String
    public var host: String
    public var pid: Int32
    public var version: String
    public var startedAt: Date
    public var sentAt: Date
    /// The admin endpoint's URL (`/healthz`, `/readyz`, `/metrics`).
    public var adminURL: String?
    /// Whether the instance is paused for maintenance.
    public var isPaused: Bool

    public init(service: String, instance: String, host: String, pid: Int32, version: String,
                startedAt: Date, sentAt: Date, adminURL: String?, isPaused: Bool = false) {
        self.service = service
        self.instance = instance
        self.host = host
        self.pid = pid
        self.version = version
        self.startedAt = startedAt
        self.sentAt = sentAt
        self.adminURL = adminURL
        self.isPaused = isPaused
    }
}
