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

/// One completed job (a batch or a periodic job) with its counts, which the
/// health-checker compares with its expectations.
public struct JobResult: Sendable, Codable, Hashable {
    public var service: String
    public var instance: String
    /// The job's name, e.g. `hydrate-batch`, `create-partitions`.
    public var job: String
    public var siteID: Int64?
    public var batchID: Int64?
    public var finishedAt: Date
    public var durationMs: Double
    /// Named counts, e.g. `{"accepted": 20, "rejected": 1}`.
    public var counts: [String: Int64]

    public init(service: String, instance: String, job: String, siteID: Int64? = nil, batchID: Int64? = nil,
                finishedAt: Date, durationMs: Double, counts: [String: Int64]) {
        self.service = service
        self.instance = instance
        self.job = job
        self.siteID = siteID
        self.batchID = batchID
        self.finishedAt = finishedAt
        self.durationMs = durationMs
        self.counts = counts
    }

    enum CodingKeys: String, CodingKey {
        case service, instance, job, siteID = "siteId", batchID = "batchId", finishedAt, durationMs, counts
    }
}
