import Logging
import Metrics
import ServiceLifecycle
import TributaryRedis

/// Handles the items a ``QueueWorker`` takes. It must make each item's effects durable
/// and idempotent (a ledger keyed by batch id, checked in the same transaction), because
/// an item can arrive again after a crash.
public protocol QueueHandler: Sendable {
    /// Processes a take's items: one site's, or several sites' when the consumer gathers
    /// several per take (``QueueConsumer/Configuration/maxSitesPerTake``); returns when
    /// their effects are committed. If it throws, the worker gives the items back to the
    /// queue after a pause, and they are delivered again.
    func handle(_ items: [QueueItem]) async throws
}

/// A long-running consumer of one ``ReliableQueue``: renews its lease, recovers orphans
/// of dead consumers, takes items fairly, hands them to a ``QueueHandler`` and
/// acknowledges them after the handler returns.
///
/// On graceful shutdown it finishes the items in hand, then stops taking; it never
/// abandons a taken item. A handler error releases the items back to the queue after a
/// pause (so a poison item cannot spin), and a Redis outage is waited out with backoff.
public struct QueueWorker<Handler: QueueHandler>: Service, CustomStringConvertible {
    let consumer: QueueConsumer
    let handler: Handler
    let recoverIntervalSeconds: Double
    let failurePauseSeconds: Double
    let logger: Logger
    let processed: Counter
    let failed: Counter
    /// While this says so (maintenance mode), the worker finishes what it holds and takes nothing new.
    let isPaused: @Sendable () -> Bool

    /// - Parameter isPaused: Read before each take; usually ``DaemonContext/isPaused``.
    public init(consumer: QueueConsumer, handler: Handler, recoverIntervalSeconds: Double = 5,
                failurePauseSeconds: Double = 1, logger: Logger, isPaused: @escaping @Sendable () -> Bool = { false }) {
        self.isPaused = isPaused
        self.consumer = consumer
        self.handler = handler
        self.recoverIntervalSeconds = recoverIntervalSeconds
        self.failurePauseSeconds = failurePauseSeconds
        self.logger = logger
        let queue = consumer.queue.keys.name
        processed = Counter(label: "tributary_queue_items_processed_total", dimensions: [("queue", queue)])
        failed = Counter(label: "tributary_queue_items_failed_total", dimensions: [("queue", queue)])
    }

    public var description: String { "QueueWorker(\(consumer.queue.keys.name))" }

    public func run() async throws {
        let leaseEvery = Duration.milliseconds(max(consumer.configuration.leaseMs / 3, 100))
        await withTaskGroup(of: Void.self) { group in
            // The lease keeps being renewed while a long item is processed.
            group.addTask {
                while !Task.isCancelled {
                    do { try await consumer.renewLease() } catch {
                        logger.warning("queue lease renewal failed", metadata: ["error": "\(error)"])
                    }
                    try? await Task.sleep(for: leaseEvery)
                }
            }
            await work()
            group.cancelAll()
        }
        do {
            // Shielded from cancellation: what this consumer holds must go back to the queue.
            try await Task { try await consumer.retire() }.value
        } catch {
            logger.warning("queue consumer could not retire; its lease will expire", metadata: ["error": "\(error)"])
        }
    }

    private func work() async {
        var lastRecovery = ContinuousClock.now - .seconds(recoverIntervalSeconds)
        var redisFailures = 0
        // Items whose effects committed but whose acknowledgement failed (Redis was down):
        // acknowledged before anything new is taken, so they are not redelivered needlessly.
        var unacknowledged: [QueueItem] = []
        // Items whose handler failed and whose release failed too (Redis was down): they sit in
        // this live consumer's in-flight list, where no orphan recovery looks; give them back
        // before anything new is taken.
        var unreleased: [QueueItem] = []
        while !(Task.isShuttingDownGracefully || Task.isCancelled) || !unacknowledged.isEmpty {
            do {
                if !unacknowledged.isEmpty {
                    try await consumer.ack(unacknowledged)
                    unacknowledged = []
                    continue
                }
                if !unreleased.isEmpty {
                    try await consumer.release(unreleased)
                    unreleased = []
                    continue
                }
                if isPaused() {
                    // Maintenance: what was in hand is done (acknowledged above); take nothing new.
                    try? await gracefulSleep(for: .milliseconds(100))
                    continue
                }
                if ContinuousClock.now - lastRecovery >= .seconds(recoverIntervalSeconds) {
                    lastRecovery = .now
                    let recovered = try await consumer.queue.recoverOrphans()
                    if recovered > 0 {
                        logger.notice("recovered items of dead consumers",
                                      metadata: ["queue.name": "\(consumer.queue.keys.name)", "queue.recovered": "\(recovered)"])
                    }
                }
                let items = try await consumer.next()
                redisFailures = 0
                guard !items.isEmpty else { continue }
                do {
                    try await handler.handle(items)
                } catch {
                    failed.increment(by: items.count)
                    logger.error("queue items failed; released for retry",
                                 metadata: ["queue.name": "\(consumer.queue.keys.name)",
                                            "site.id": "\(Array(Set(items.map(\.site))).sorted().joined(separator: ","))",
                                            "error": "\(error)"])
                    do { try await consumer.release(items) } catch { unreleased = items }
                    try? await Task.sleep(for: .milliseconds(Int(failurePauseSeconds * 1000)))
                    continue
                }
                processed.increment(by: items.count)
                unacknowledged = items
                // The effects are committed: acknowledge even if the task is being cancelled.
                try await Task { [consumer] in try await consumer.ack(items) }.value
                unacknowledged = []
            } catch {
                if Task.isCancelled { return }
                redisFailures += 1
                let delay = min(50 << min(redisFailures, 6), 2_000)
                logger.warning("queue unavailable; retrying",
                               metadata: ["queue.name": "\(consumer.queue.keys.name)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(delay))
            }
        }
    }
}
