import Foundation
import Logging
import ServiceLifecycle
import TributaryRuntime

/// Creates the daily partitions of `collector.raw_batches` ahead of time (yesterday
/// through `daysAhead` days from now), at start-up and every hour, so no partition is
/// ever created on the request path; and drops the days older than `retentionDays`.
struct PartitionMaintainer: Service, CustomStringConvertible {
    let store: RawBatchStore
    let daysAhead: Int
    /// Days of raw batches kept (whole UTC days; see ``RawBatchStore/dropExpired(now:retentionDays:notBefore:lockTimeoutMs:)``).
    let retentionDays: Int
    /// How long a drop waits for the table's lock before leaving the day for the next pass.
    let lockTimeoutMs: Int
    let logger: Logger
    /// Where each run's result goes: job `partitions` (the health-checker's expectations).
    var jobs: JobReporter? = nil

    var description: String { "PartitionMaintainer" }

    func maintain() async throws {
        let now = Date()
        try await store.ensurePartitions(for: RawBatchStore.days(
            from: now.addingTimeInterval(-86_400), through: now.addingTimeInterval(Double(daysAhead) * 86_400)))
        let expired = try await store.dropExpired(now: now, retentionDays: retentionDays, lockTimeoutMs: lockTimeoutMs)
        if !expired.dropped.isEmpty {
            logger.notice("dropped raw batches past the retention", metadata: [
                "partitions": "\(expired.dropped.joined(separator: ","))", "retention.days": "\(retentionDays)"])
        }
        if !expired.held.isEmpty {
            logger.warning("raw batches past the retention kept: some still wait in the outbox to be enqueued",
                           metadata: ["partitions": "\(expired.held.joined(separator: ","))"])
        }
        if !expired.deferred.isEmpty {
            logger.notice("raw batches past the retention left for the next pass: the table stayed busy",
                          metadata: ["partitions": "\(expired.deferred.joined(separator: ","))"])
        }
        jobs?.record("partitions", counts: ["daysAhead": Int64(daysAhead), "dropped": Int64(expired.dropped.count),
                                            "held": Int64(expired.held.count), "deferred": Int64(expired.deferred.count)])
    }

    func run() async throws {
        await runPeriodically("collector-partitions", every: .seconds(3600), logger: logger) { try await maintain() }
    }
}
