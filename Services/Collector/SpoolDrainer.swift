import Foundation
import Logging
import ServiceLifecycle
import TributaryRuntime

/// Moves spooled batches into PostgreSQL once it is reachable again: segment by segment,
/// in order, each record inserted only if absent (so a crash mid-drain repeats nothing),
/// hands the newly stored ones to the ``OutboxRelay`` and deletes the segment.
struct SpoolDrainer: Service, CustomStringConvertible {
    let spool: Spool
    let store: RawBatchStore
    let relay: OutboxRelay
    let interval: Duration
    let logger: Logger
    /// Where the spool's size goes every `interval`: job `spool` (the health-checker's
    /// headroom check alerts while it is not empty).
    var jobs: JobReporter? = nil

    var description: String { "SpoolDrainer" }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if !spool.isEmpty { await drain() }
            jobs?.record("spool", counts: ["bytes": Int64(spool.sizeBytes)])
            try? await gracefulSleep(for: interval)
        }
    }

    /// Drains every closed segment; stops at the first failure (PostgreSQL still down).
    func drain() async {
        for segment in spool.sealSegments() {
            do {
                let (records, skipped) = try await spool.records(inSegment: segment)
                if skipped > 0 {
                    logger.warning("spool segment had damaged or torn records; skipped them",
                                   metadata: ["spool.segment": "\(segment)", "spool.skipped": "\(skipped)"])
                }
                var index = 0
                while index < records.count {
                    let chunk = Array(records[index..<min(index + 500, records.count)])
                    let dates = chunk.map(\.receivedAt)
                    try await store.ensurePartitions(for: RawBatchStore.days(from: dates.min()!, through: dates.max()!))
                    relay.enqueue(try await store.insertIfAbsent(chunk))
                    index += chunk.count
                }
                await spool.remove(segment: segment)
                logger.notice("drained spool segment", metadata: ["spool.segment": "\(segment)", "batches": "\(records.count)"])
            } catch {
                logger.warning("spool drain paused; PostgreSQL unavailable", metadata: ["error": "\(error)"])
                return
            }
        }
    }
}
