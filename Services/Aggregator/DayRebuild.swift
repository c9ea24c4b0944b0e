import Foundation
import TributaryModels

/// Recomputes one local day's rows from a complete set of interactions around it (the day
/// before and after included), the way live aggregation would have produced them, but
/// with the true top N values of each breakdown kept and the rest folded into "(other)".
struct DayRebuild: Sendable {
    let clock: LocalClock
    let timeout: TimeInterval
    let limit: Int

    struct Result: Sendable {
        var daily: [DayKey: Counts]
        var hourly: [Int64: Counts]
        /// The day's memberships (mapped) with their refs, and the visits that start on it.
        var members: [Member: Int64]
        var visits: [Session]
    }

    /// Memberships of `day`, unmapped: event dimensions from its events, visit dimensions
    /// (with the number of visits) from the visits that start on it.
    func members(day: Int32, events: [StatEvent], visits: [Session]) -> [Member: Int64] {
        var out: [Member: Int64] = [:]
        for m in EventRollup(events.filter { clock.day($0.time) == day }, clock: clock).members { out[m] = 1 }
        for v in visits where clock.day(v.start) == day {
            for (dim, value) in v.visitValues(withExit: true) {
                out[Member(key: DayKey(day: day, dim: dim, value: value), visitor: v.visitor), default: 0] += 1
            }
        }
        return out
    }

    /// The rows of `day`; `previous` maps the day before's memberships to its stored rows.
    func rows(day: Int32, events: [StatEvent], previousDayMapping previous: (DayKey) -> DayKey) -> Result {
        let visits = VisitBuilder.visits(events, timeout: timeout)
        let ofDay = events.filter { clock.day($0.time) == day }
        let counted = EventRollup(ofDay, clock: clock)
        let starting = visits.filter { clock.day($0.start) == day }
        let visitCounts = VisitChange(stored: [], recomputed: starting).counts(clock: clock)
        var raw = counted.daily
        for (k, c) in visitCounts.daily { raw[k, default: Counts()] += c }
        var hourly = counted.hourly
        for (k, c) in visitCounts.hourly { hourly[k, default: Counts()] += c }
        let members = self.members(day: day, events: events, visits: visits)
        let mapping = topN(raw, members: members)
        var daily: [DayKey: Counts] = [:]
        for (k, c) in raw { daily[mapping[k] ?? k, default: Counts()] += c }
        var mapped: [Member: Int64] = [:]
        for (m, n) in members { mapped[Member(key: mapping[m.key] ?? m.key, visitor: m.visitor), default: 0] += n }
        let yesterday = Set(self.members(day: day - 1, events: events, visits: visits).keys.map {
            Member(key: previous($0.key), visitor: $0.visitor)
        })
        for m in mapped.keys {
            if m.key.dim == Dim.hour {
                hourly[Int64(day) * 24 + (Int64(m.key.value) ?? 0), default: Counts()].visitors += 1
                continue
            }
            daily[m.key, default: Counts()].visitors += 1
            let before = Member(key: DayKey(day: day - 1, dim: m.key.dim, value: m.key.value), visitor: m.visitor)
            if yesterday.contains(before) { daily[m.key, default: Counts()].carried += 1 }
        }
        return Result(daily: daily.filter { !$0.value.isZero }, hourly: hourly.filter { !$0.value.isZero },
                      members: mapped, visits: starting)
    }

    /// Keeps, per breakdown, the `limit` values with the most visitors (then visits, page
    /// views, events); maps the others to "(other)".
    func topN(_ rows: [DayKey: Counts], members: [Member: Int64]) -> [DayKey: DayKey] {
        var visitors: [DayKey: Int] = [:]
        for m in members.keys { visitors[m.key, default: 0] += 1 }
        var byDim: [String: [DayKey]] = [:]
        for key in Set(rows.keys).union(visitors.keys) where Dim.folds(key.dim) { byDim[key.dim, default: []].append(key) }
        var mapping: [DayKey: DayKey] = [:]
        for (_, keys) in byDim where keys.count > limit {
            let ranked = keys.sorted { a, b in
                let ca = rows[a] ?? Counts(), cb = rows[b] ?? Counts()
                let ka = (visitors[a] ?? 0, ca.visits, ca.pageviews, ca.events), kb = (visitors[b] ?? 0, cb.visits, cb.pageviews, cb.events)
                return ka != kb ? ka > kb : a.value < b.value
            }
            for key in ranked[limit...] { mapping[key] = DayKey(day: key.day, dim: key.dim, value: Dim.other) }
        }
        return mapping
    }
}
