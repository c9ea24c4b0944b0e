import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TributaryPostgres
import TributaryRuntime

/// Makes raw batches durable with group commit: requests that arrive while a write is
/// in progress are gathered and saved together, in one COPY and one COMMIT, then all are
/// answered. There is no waiting timer: each write takes what piled up during the last.
///
/// While PostgreSQL is unreachable the group goes to the ``Spool`` instead (fsynced),
/// unless Redis is unreachable too or the spool is full: then the requests are refused
/// with 503, because nothing is acknowledged that is not durable.
final class BatchWriter: Service, CustomStringConvertible {
    /// Where a batch was made durable.
    enum Outcome: Sendable { case stored, spooled }

    private struct Pending {
        var record: RawBatchRecord
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        var pending: [Pending] = []
        var postgresRetryAt: ContinuousClock.Instant?
        var isStopped = false
    }

    private let store: RawBatchStore
    private let spool: Spool
    private let relay: OutboxRelay
    private let monitor: DependencyMonitor
    private let maximumGroup: Int
    private let retryAfterSeconds: Int
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>.Continuation
    private let wakeups: AsyncStream<Void>
    private let groupSize = Recorder(label: "tributary_collector_group_commit_batches")
    private let commitTime = Timer(label: "tributary_collector_group_commit_seconds")
    private let spooled = Counter(label: "tributary_collector_batches_spooled_total")
    /// Where each committed group's result goes: job `store` (the health-checker's expectations).
    private let jobs: JobReporter?

    var description: String { "BatchWriter" }

    init(store: RawBatchStore, spool: Spool, relay: OutboxRelay, monitor: DependencyMonitor, maximumGroup: Int,
         retryAfterSeconds: Int, logger: Logger, jobs: JobReporter? = nil) {
        self.jobs = jobs
        self.store = store
        self.spool = spool
        self.relay = relay
        self.monitor = monitor
        self.maximumGroup = maximumGroup
        self.retryAfterSeconds = retryAfterSeconds
        self.logger = logger
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether the last write reached PostgreSQL (false while writes go to the spool).
    var isPostgresAvailable: Bool {
        state.withLock { s in s.postgresRetryAt.map { $0 <= .now } ?? true }
    }

    /// Makes `record` durable; returns once it is committed or spooled.
    /// - Throws: ``IngestError`` (503) when it cannot be made durable.
    func save(_ record: RawBatchRecord) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = state.withLock { s -> Bool in
                guard !s.isStopped else { return false }
                s.pending.append(Pending(record: record, continuation: continuation))
                return true
            }
            if accepted {
                wake.yield()
            } else {
                continuation.resume(throwing: unavailable("the collector is shutting down"))
            }
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in wakeups {
                await drainPending()
                if state.withLock({ $0.isStopped }) { break }
            }
        } onGracefulShutdown: { [self] in
            // The HTTP server stops first; whatever is pending is still written.
            state.withLock { $0.isStopped = true }
            wake.yield()
        }
        await drainPending()
    }

    private func drainPending() async {
        while true {
            let group = state.withLock { s -> [Pending] in
                let n = min(s.pending.count, maximumGroup)
                defer { s.pending.removeFirst(n) }
                return Array(s.pending.prefix(n))
            }
            if group.isEmpty { return }
            await write(group)
        }
    }

    private func write(_ group: [Pending]) async {
        let records = group.map(\.record)
        groupSize.record(group.count)
        let skipPostgres = state.withLock { s in s.postgresRetryAt.map { $0 > .now } ?? false }
        if !skipPostgres {
            let start = ContinuousClock.now
            do {
                try await commitCreatingPartitions(records)
                commitTime.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
                state.withLock { $0.postgresRetryAt = nil }
                group.forEach { $0.continuation.resume(returning: .stored) }
                relay.enqueue(records)
                jobs?.record("store", counts: ["batches": Int64(records.count),
                                               "events": records.reduce(0) { $0 + Int64($1.eventCount) }])
                return
            } catch let error as PostgresError where Self.isUnavailable(error) {
                state.withLock { $0.postgresRetryAt = .now + .seconds(1) }
                logger.warning("PostgreSQL unavailable; spooling", metadata: ["error": "\(error)"])
            } catch {
                // The server refused the data: save one by one so only the bad batch fails.
                await writeOneByOne(group, after: error)
                return
            }
        }
        await spoolGroup(group)
    }

    private func commitCreatingPartitions(_ records: [RawBatchRecord]) async throws {
        do {
            try await store.commit(records)
        } catch let error as PostgresError where error.sqlState == "23514" {
            // No partition for these days yet (the maintainer creates them ahead; this is the fallback).
            let dates = records.map(\.receivedAt)
            try await store.ensurePartitions(for: RawBatchStore.days(from: dates.min()!, through: dates.max()!))
            try await store.commit(records)
        }
    }

    private func writeOneByOne(_ group: [Pending], after error: any Error) async {
        logger.error("group commit refused; saving batches one by one", metadata: ["error": "\(error)"])
        for pending in group {
            do {
                let stored = try await store.insertIfAbsent([pending.record])
                pending.continuation.resume(returning: .stored)
                relay.enqueue(stored)
            } catch let error as PostgresError where Self.isUnavailable(error) {
                await spoolGroup([pending])
            } catch {
                pending.continuation.resume(throwing: IngestError(
                    status: 400, code: "unstorable_batch",
                    message: "the batch was refused by the database; check it holds only valid UTF-8 text"))
            }
        }
    }

    private func spoolGroup(_ group: [Pending]) async {
        guard monitor.isRedisReachable else {
            group.forEach {
                $0.continuation.resume(throwing: unavailable("PostgreSQL and Redis are both unreachable"))
            }
            return
        }
        do {
            try await spool.append(group.map(\.record))
            spooled.increment(by: group.count)
            group.forEach { $0.continuation.resume(returning: .spooled) }
        } catch Spool.Failure.full {
            group.forEach { $0.continuation.resume(throwing: unavailable("PostgreSQL is unreachable and the spool is full")) }
        } catch {
            logger.critical("spool write failed", metadata: ["error": "\(error)"])
            group.forEach { $0.continuation.resume(throwing: unavailable("PostgreSQL is unreachable and the spool cannot be written")) }
        }
    }

    private func unavailable(_ message: String) -> IngestError {
        IngestError(status: 503, code: "unavailable", message: message + "; retry later", retryAfter: retryAfterSeconds)
    }

    /// Errors that mean "PostgreSQL cannot take writes now", as opposed to "refused this data".
    static func isUnavailable(_ error: PostgresError) -> Bool {
        if error.code == .connectionFailed || error.code == .connectionLost || error.code == .closed { return true }
        guard let state = error.sqlState else { return false }
        // 42P01/3F000: the schema is not there yet (PostgreSQL came back before the migration ran).
        return state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57") || state == "40001"
            || state == "40P01" || state == "25006" || state == "42P01" || state == "3F000"
    }
}

