import Foundation
import Synchronization
import TributaryModels

/// Collects the results of this process's jobs in memory; the heartbeat writes the
/// changed ones to Redis (``JobResult/redisKey``) with every beat, so reporting costs a
/// job nothing but a lock.
///
/// A job whose result is outside its expected range passes an `anomaly`, e.g. "batch 7
/// of site 3 accepted 0 of 500 events": the health-checker alerts on new anomalies.
public final class JobReporter: Sendable {
    private struct State {
        var results: [String: JobResult] = [:]
        var dirty: Set<String> = []
    }

    public let service: String
    public let instance: String
    private let state = Mutex(State())

    public init(service: String, instance: String) {
        self.service = service
        self.instance = instance
    }

    /// Records one completion of `job` with its counts, and an anomaly if its result was
    /// outside the expected range.
    public func record(_ job: String, counts: [String: Int64] = [:], anomaly: String? = nil, at now: Date = Date()) {
        state.withLock { state in
            var result = state.results[job] ?? JobResult(service: service, job: job, instance: instance, lastAt: now)
            result.lastAt = now
            result.completions += 1
            result.last = counts
            for (key, value) in counts { result.totals[key, default: 0] += value }
            if let anomaly {
                result.anomalies += 1
                result.lastAnomaly = anomaly
                result.lastAnomalyAt = now
            }
            state.results[job] = result
            state.dirty.insert(job)
        }
    }

    /// The results changed since the last call (marked clean; ``restore(_:)`` undoes it).
    public func takeChanged() -> [JobResult] {
        state.withLock { state in
            let changed = state.dirty.compactMap { state.results[$0] }
            state.dirty = []
            return changed
        }
    }

    /// Marks results as changed again, after a failed write.
    public func restore(_ results: [JobResult]) {
        state.withLock { state in
            for result in results { state.dirty.insert(result.job) }
        }
    }
}
