import Foundation
import Logging
import ServiceLifecycle
import TributaryRuntime

/// Creates the daily partitions of `collector.raw_batches` ahead of time (yesterday
/// through `daysAhead` days from now), at start-up and every hour, so no partition is
/// ever created on the request path.
struct PartitionMaintainer: Service, CustomStringConvertible {
    let store: RawBatchStore
    let daysAhead: Int
    let logger: Logger
    /// Where each run's result goes: job `partitions` (the health-checker's expectations).
    var jobs: JobReporter? = nil

    var description: String { "PartitionMaintainer" }

    func maintain() async throws {
        let now = Date()
        try await store.ensurePartitions(for: RawBatchStore.days(
            from: now.addingTimeInterval(-86_400), through: now.addingTimeInterval(Double(daysAhead) * 86_400)))
        jobs?.record("partitions", counts: ["daysAhead": Int64(daysAhead)])
    }

    func run() async throws {
        await runPeriodically("collector-partitions", every: .seconds(3600), logger: logger) { try await maintain() }
    }
}
