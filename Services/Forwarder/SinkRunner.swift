import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// Delivers one sink's events in this forwarder instance: takes items from the sink's own
/// `forward:<sink>` queue, fills batches (size and wait limits of the sink), keeps up to
/// the sink's concurrency of requests in flight, and acknowledges items once every event
/// in them is settled; alongside, delivers the sink's due retries. Its circuit breaker
/// pauses both while the sink is failing. Nothing it does waits on another sink.
struct SinkRunner: Sendable {
    let sinkID: Int64
    let consumer: QueueConsumer
    let catalog: SinkCatalog
    let deliverer: Deliverer
    /// This sink's own threads (its requests and address lookups), shut down when it stops.
    let threads: NIOThreadPool
    let breaker: CircuitBreaker
    let configuration: ForwarderConfiguration
    let recoverIntervalSeconds: Double
    let logger: Logger
    /// Set when the sink is disabled or removed: finish what is in hand, then return.
    let stop: StopFlag
    /// While this says so (maintenance mode), requests in flight finish and nothing new is
    /// taken from the queue or the retries.
    var isPaused: @Sendable () -> Bool = { false }

    private var stopped: Bool { stop.isSet || Task.isShuttingDownGracefully || Task.isCancelled }

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await renewLease() }
            group.addTask { await retryLoop() }
            await queueLoop()
            stop.set()
            await group.waitForAll()
        }
        do {
            try await Task { [consumer] in try await consumer.retire() }.value
        } catch {
            logger.warning("sink consumer could not retire; its lease will expire", metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
        }
        try? await threads.shutdownGracefully()
    }

    private func renewLease() async {
        let every = Duration.milliseconds(max(consumer.configuration.leaseMs / 3, 100))
        var lastRecovery = ContinuousClock.now - .seconds(recoverIntervalSeconds)
        while !stopped {
            do {
                try await consumer.renewLease()
                if ContinuousClock.now - lastRecovery >= .seconds(recoverIntervalSeconds) {
                    lastRecovery = .now
                    try await consumer.queue.recoverOrphans()
                }
            } catch {
                logger.warning("sink queue lease renewal failed", metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
            }
            try? await Task.sleep(for: every)
        }
    }

    /// Items taken and the events in them.
    private struct Gathered {
        var items: [QueueItem] = []
        var events: [ForwardEvent] = []
    }

    private func queueLoop() async {
        await withTaskGroup(of: Void.self) { inFlight in
            var running = 0
            var redisFailures = 0
            while !stopped {
                guard let sink = catalog.entry(sinkID)?.sink, sink.enabled else { break }
                let limits = sink.limits
                while running >= max(limits.concurrency, 1) {
                    await inFlight.next()
                    running -= 1
                }
                // While the sink is paused (its breaker, or maintenance), its items stay in the queue.
                if breaker.state == .open || isPaused() {
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                let gathered: Gathered
                do {
                    gathered = try await gather(limits: limits)
                    redisFailures = 0
                } catch {
                    redisFailures += 1
                    logger.warning("sink queue unavailable; retrying", metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(min(50 << min(redisFailures, 6), 2_000)))
                    continue
                }
                guard !gathered.items.isEmpty else { continue }
                // The permit is taken only when there is something to send (a probe if the
                // breaker is half-open: the other senders wait for its answer).
                guard await breaker.acquire(stopped: { Task.isCancelled }) != nil else {
                    await untilDone { [consumer] in try await consumer.release(gathered.items) }
                    break
                }
                running += 1
                inFlight.addTask { await settle(gathered, sink: sink) }
            }
            await inFlight.waitForAll()
        }
    }

    /// Takes items until the batch is full or the sink's wait limit passes.
    private func gather(limits: Sink.Limits) async throws -> Gathered {
        var gathered = Gathered()
        // Polls instead of blocking on the wake list: a blocked wait holds a thread, and a
        // forwarder with many idle sinks would run out of them. The pause grows while idle.
        var pause = 10
        var first = try await consumer.take()
        while first.isEmpty {
            if stopped || isPaused() { return gathered }
            try? await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, configuration.idlePollMaxMs)
            first = try await consumer.take()
        }
        await add(first, to: &gathered)
        let deadline = ContinuousClock.now + .milliseconds(limits.maxWaitMs)
        while gathered.events.count < limits.batchSize && ContinuousClock.now < deadline && !stopped && !isPaused() {
            // Redis went away while filling the batch: deliver what is in hand. Throwing here
            // would drop items already taken into this live consumer's in-flight list, where
            // nobody would ever acknowledge or give them back.
            guard let more = try? await consumer.take() else { break }
            if more.isEmpty {
                try? await Task.sleep(for: min(.milliseconds(50), deadline - .now))
            } else {
                await add(more, to: &gathered)
            }
        }
        return gathered
    }

    private func add(_ items: [QueueItem], to gathered: inout Gathered) async {
        for item in items {
            gathered.items.append(item)
            guard let value = try? JSONValue.parse(item.payload), let o = value.objectValue,
                  case .int(let site)? = o["siteId"], case .array(let events)? = o["events"] else {
                await recordBad(item)
                continue
            }
            let share = item.payload.count / max(events.count, 1)
            for value in events {
                guard let object = value.objectValue, var event = ForwardEvent(object: object, siteID: site) else { continue }
                event.approximateBytes = share
                gathered.events.append(event)
            }
        }
    }

    /// Delivers a gathered set in chunks, then acknowledges its items. If the outcome
    /// cannot be stored, the items go back to the queue (nothing is acknowledged unsettled).
    private func settle(_ gathered: Gathered, sink: Sink) async {
        do {
            for (i, chunk) in Deliverer.chunks(gathered.events, limits: sink.limits).enumerated() {
                // Each request after the first asks the breaker again, so a failing sink
                // gets no more requests than the breaker allows, however many chunks wait.
                if i > 0, await breaker.acquire(stopped: { Task.isCancelled }) == nil { throw CancellationError() }
                try await deliverer.deliver(chunk, sink: sink, breaker: breaker)
            }
        } catch {
            logger.error("could not settle a delivery; items released for retry",
                         metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
            breaker.release()
            await untilDone { [consumer] in try await consumer.release(gathered.items) }
            try? await Task.sleep(for: .seconds(1))
            return
        }
        // Delivered and settled; if Redis is down, keep trying: items left in this live
        // consumer's in-flight list would be recovered by nobody.
        await untilDone { [consumer] in try await consumer.ack(gathered.items) }
    }

    /// Runs a queue operation until it succeeds (Redis may be restarting), with backoff;
    /// gives up only when the runner stops (then retiring gives the items back).
    private func untilDone(_ operation: @escaping @Sendable () async throws -> Void) async {
        var failures = 0
        while true {
            do {
                try await Task { try await operation() }.value
                return
            } catch {
                failures += 1
                if failures == 1 {
                    logger.warning("queue unavailable for a release or acknowledgement; retrying",
                                   metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
                }
                if stopped && failures > 3 { return }
                try? await Task.sleep(for: .milliseconds(min(50 << min(failures, 6), 2_000)))
            }
        }
    }

    private func retryLoop() async {
        while !stopped {
            guard let sink = catalog.entry(sinkID)?.sink, sink.enabled else { return }
            var found = 0
            do {
                let state = breaker.state
                if state != .open && !isPaused() {
                    // While the sink is being probed, one group at a time; the claim's lease
                    // covers one request, and what is not tried is given back at once.
                    let limit = state == .closed ? configuration.retryClaimLimit : 1
                    let lease = Double(sink.limits.timeoutMs) / 1000 * 2 + 10
                    var due = try await DeliveryStore.claimRetries(deliverer.postgres, sink: sinkID, limit: limit, leaseSeconds: lease)
                    found = due.count
                    while !due.isEmpty {
                        if stopped || breaker.state == .open || isPaused() {
                            try await DeliveryStore.unclaim(deliverer.postgres, due)
                            break
                        }
                        let retry = due.removeFirst()
                        guard await breaker.acquire(stopped: { Task.isCancelled }) != nil else {
                            try await DeliveryStore.unclaim(deliverer.postgres, [retry] + due)
                            break
                        }
                        try await deliverer.deliver(retry.events, sink: sink, breaker: breaker, prior: .init(
                            site: retry.site, retryID: retry.id, attempts: retry.attempts, firstAttemptAt: retry.firstAttemptAt))
                    }
                }
            } catch {
                logger.warning("retries of a sink failed; trying again", metadata: ["sink.id": "\(sinkID)", "error": "\(error)"])
            }
            if found < configuration.retryClaimLimit {
                try? await Task.sleep(for: .milliseconds(Int(configuration.retryPollSeconds * 1000)))
            }
        }
    }

    private func recordBad(_ item: QueueItem) async {
        logger.error("forward queue item is not a hydrated batch; recorded in forwarder.bad_messages",
                     metadata: ["sink.id": "\(sinkID)", "site.id": "\(item.site)"])
        _ = try? await deliverer.postgres.query(
            "INSERT INTO forwarder.bad_messages (sink_id, site_id, reason, raw) VALUES ($1, $2, $3, $4)",
            [sinkID, Int64(item.site) ?? 0, "not a hydrated batch message (docs/queues.md, forward:<sink>)",
             String(decoding: item.payload, as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "")])
    }
}

/// A flag set once to ask a runner to stop.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
