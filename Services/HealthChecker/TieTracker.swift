import Foundation
import Synchronization
import TributaryModels

/// The state of the numbers-that-tie checks between rounds: how far each tie has been
/// checked (a watermark, so each batch is read once, not once per round), and the
/// batches that did not tie yet, re-checked every run until they do or age out.
final class TieTracker: Sendable {
    /// A batch that did not tie (yet).
    struct Gap: Sendable, Hashable {
        var kind: CheckKind
        var site: Int64
        var batch: Int64
        var sink: Int64?
        var expected: Int64
        var found: Int64?
        /// Still in the sink's queue or retries: not (yet) a loss.
        var pending = false
        var since: Date
        var key: String { "\(kind.rawValue):\(site):\(batch):\(sink ?? 0)" }
    }

    private struct State {
        var watermarks: [CheckKind: Date] = [:]
        var gaps: [String: Gap] = [:]
        var lastRun: Date?
        var lastRescan: Date?
        var results: [CheckResult] = []
    }

    private let state = Mutex(State())
    let configuration: HealthCheckerConfiguration

    init(configuration: HealthCheckerConfiguration) {
        self.configuration = configuration
    }

    /// The cached results if the ties ran less than their interval ago.
    func cached(now: Date) -> [CheckResult]? {
        state.withLock { s in
            guard let last = s.lastRun, now.timeIntervalSince(last) < configuration.tieIntervalSeconds, !s.results.isEmpty else {
                return nil
            }
            return s.results
        }
    }

    /// Forgets the watermarks when a rescan of the whole window is due (or forced), so
    /// this run reads the whole window again.
    func startRun(now: Date, force: Bool) {
        state.withLock { s in
            if force || s.lastRescan.map({ now.timeIntervalSince($0) >= configuration.tieRescanSeconds }) ?? true {
                s.watermarks = [:]
                s.lastRescan = now
            }
        }
    }

    /// The range to read for `kind` this run: from its watermark (or the window's start)
    /// to now minus the grace period.
    func range(_ kind: CheckKind, now: Date) -> (from: Date, to: Date) {
        let to = now.addingTimeInterval(-configuration.tieGraceSeconds)
        let start = to.addingTimeInterval(-configuration.tieWindowHours * 3600)
        let from = state.withLock { max($0.watermarks[kind] ?? start, start) }
        return (from, max(from, to))
    }

    func gaps(_ kind: CheckKind) -> [Gap] {
        state.withLock { s in s.gaps.values.filter { $0.kind == kind } }
    }

    /// Records a run of `kind`: the range read, the new gaps found in it and the
    /// re-checked old ones (those that tie now are dropped by the caller).
    func update(_ kind: CheckKind, through: Date, gaps: [Gap], now: Date) {
        state.withLock { s in
            s.watermarks[kind] = through
            let horizon = now.addingTimeInterval(-configuration.tieWindowHours * 3600 - configuration.tieGraceSeconds)
            s.gaps = s.gaps.filter { $0.value.kind != kind }
            for gap in gaps where gap.since > horizon && s.gaps.count < configuration.tieMaxTracked {
                s.gaps[gap.key] = gap
            }
        }
    }

    func finish(_ results: [CheckResult], now: Date) {
        state.withLock { s in
            s.lastRun = now
            s.results = results
        }
    }
}
