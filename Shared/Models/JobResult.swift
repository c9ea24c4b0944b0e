import Foundation

/// What one daemon instance reports about one of its jobs: how often it completed, with
/// what counts, and which results fell outside the range the job expects. Written to the
/// Redis hash `tributary:jobs` (field `<service>:<job>:<instance>`) with every heartbeat
/// and read by the health-checker's job expectations (docs/queues.md, "Job results").
///
/// Jobs are either per batch (`batch`, `deliver:<sinkId>`, `store`: one result per unit
/// of work) or periodic (`partitions`, `janitor`, `spool`: one result per run).
public struct JobResult: Sendable, Codable, Hashable {
    public var service: String
    public var job: String
    public var instance: String
    /// When the job last completed.
    public var lastAt: Date
    /// Completions since the instance started.
    public var completions: Int64
    /// The counts of the last completion (e.g. `received`, `stored`, `rejected`).
    public var last: [String: Int64]
    /// The counts summed over all completions since the instance started.
    public var totals: [String: Int64]
    /// Completions whose result was outside the job's expected range.
    public var anomalies: Int64
    /// What the last anomalous result was, in words, and when.
    public var lastAnomaly: String?
    public var lastAnomalyAt: Date?

    public init(service: String, job: String, instance: String, lastAt: Date, completions: Int64 = 0,
                last: [String: Int64] = [:], totals: [String: Int64] = [:], anomalies: Int64 = 0,
                lastAnomaly: String? = nil, lastAnomalyAt: Date? = nil) {
        self.service = service
        self.job = job
        self.instance = instance
        self.lastAt = lastAt
        self.completions = completions
        self.last = last
        self.totals = totals
        self.anomalies = anomalies
        self.lastAnomaly = lastAnomaly
        self.lastAnomalyAt = lastAnomalyAt
    }

    /// The Redis hash every instance writes its results to.
    public static let redisKey = "tributary:jobs"
    /// The hash field of this result.
    public var field: String { "\(service):\(job):\(instance)" }
}
