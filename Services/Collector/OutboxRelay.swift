import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Enqueues saved batches on the `hydrate` queue and then forgets their outbox rows.
///
/// Batches committed by the ``BatchWriter`` are handed over in memory and pushed at
/// once. Anything that missed that path (Redis was down, the process crashed between
/// commit and push, the in-memory buffer overflowed, the spool was drained) still has
/// its outbox row, and a periodic scan enqueues it: a crash between saving and
/// enqueueing never strands a batch. A batch may be enqueued twice; hydration's ledger
/// makes the second a no-op.
final class OutboxRelay: Service, CustomStringConvertible {
    private let queue: ReliableQueue
    private let store: RawBatchStore
    private let scanInterval: Duration
    private let graceSeconds: Double
    private let bufferLimit: Int
    private let logger: Logger
    private let buffer = Mutex<[RawBatchRecord]>([])
    /// Enqueued batches whose outbox rows could not be deleted yet (PostgreSQL down):
    /// deleted before the next scan, so the scan does not enqueue them again.
    private let pendingDeletes = Mutex<[RawBatchRecord]>([])
    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let enqueued = Counter(label: "tributary_collector_batches_enqueued_total")
    private let failures = Counter(label: "tributary_collector_enqueue_failures_total")

    var description: String { "OutboxRelay" }

    init(queue: ReliableQueue, store: RawBatchStore, scanSeconds: Double, graceSeconds: Double, bufferLimit: Int,
         logger: Logger) {
        self.queue = queue
        self.store = store
        self.scanInterval = .milliseconds(Int(scanSeconds * 1000))
        self.graceSeconds = graceSeconds
        self.bufferLimit = bufferLimit
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Hands over committed batches for enqueueing (never blocks; beyond the buffer
    /// limit they are left to the outbox scan).
    func enqueue(_ records: [RawBatchRecord]) {
        buffer.withLock { b in
            let room = max(0, bufferLimit - b.count)
            b.append(contentsOf: records.prefix(room))
        }
        wake.yield()
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                var lastScan = ContinuousClock.now
                for await _ in wakeups {
                    await pushBuffered()
                    if ContinuousClock.now - lastScan >= scanInterval {
                        lastScan = .now
                        if await retryDeletes() { await scanOutbox() }
                    }
                }
            }
            group.addTask { [self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: scanInterval)
                    wake.yield()
                }
            }
            await withGracefulShutdownHandler {
                await group.next()
            } onGracefulShutdown: { [self] in
                wake.finish()
            }
            group.cancelAll()
        }
        await pushBuffered()
    }

    private func pushBuffered() async {
        while true {
            let records = buffer.withLock { b -> [RawBatchRecord] in
                let n = min(b.count, 500)
                defer { b.removeFirst(n) }
                return Array(b.prefix(n))
            }
            if records.isEmpty { return }
            guard await push(records) else {
                // Redis is down: the outbox rows remain, the scan will retry them.
                buffer.withLock { $0.removeAll() }
                return
            }
        }
    }

    /// Enqueues outbox rows that have waited longer than the grace period.
    func scanOutbox() async {
        while true {
            let records: [RawBatchRecord]
            do {
                records = try await store.pendingOutbox(graceSeconds: graceSeconds, limit: 500)
            } catch {
                logger.warning("outbox scan failed", metadata: ["error": "\(error)"])
                return
            }
            if records.isEmpty { return }
            logger.notice("enqueueing batches from the outbox", metadata: ["batches": "\(records.count)"])
            guard await push(records) else { return }
            // Batches committed while the scan ran may be both in the outbox and in the
            // in-memory buffer: now that the scan enqueued them, drop them from the buffer.
            let done = Set(records.map(\.batchID))
            buffer.withLock { $0.removeAll { done.contains($0.batchID) } }
            guard records.count == 500 else { return }
        }
    }

    /// Pushes, then deletes the outbox rows; returns false if Redis failed.
    private func push(_ records: [RawBatchRecord]) async -> Bool {
        do {
            let items = records.map { r in
                QueueItem(site: String(r.siteID), payload: RawBatchMessage(
                    batchID: r.batchID, siteID: r.siteID, receivedAt: r.receivedAt, clientIP: r.clientIP,
                    userAgent: r.userAgent, eventCount: r.eventCount, payload: r.payload).serialized())
            }
            try await queue.push(items)
            enqueued.increment(by: records.count)
        } catch {
            failures.increment()
            logger.warning("enqueue failed; batches stay in the outbox", metadata: ["error": "\(error)"])
            return false
        }
        do {
            try await store.removeFromOutbox(records)
        } catch {
            pendingDeletes.withLock { $0.append(contentsOf: records) }
            logger.warning("could not clear outbox rows; will retry", metadata: ["error": "\(error)"])
        }
        return true
    }

    /// Deletes outbox rows left over from failed deletes; false if some remain.
    private func retryDeletes() async -> Bool {
        let records = pendingDeletes.withLock { p -> [RawBatchRecord] in
            defer { p.removeAll() }
            return p
        }
        guard !records.isEmpty else { return true }
        do {
            try await store.removeFromOutbox(records)
            return true
        } catch {
            pendingDeletes.withLock { $0.append(contentsOf: records) }
            return false
        }
    }
}
