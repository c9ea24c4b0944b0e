import Foundation
import TributaryModels

/// One visitor counted in one row of one day (or hour of day, dim ``Dim/hour``).
struct Member: Sendable, Hashable {
    var key: DayKey
    var visitor: String

    /// The same visitor in the same row `days` days later (earlier when negative).
    func shifted(_ days: Int32) -> Member {
        Member(key: DayKey(day: key.day + days, dim: key.dim, value: key.value), visitor: visitor)
    }
}

/// The counts a set of new events adds by itself, whatever else is stored: page views and
/// events per day, hour, page, event name and property, and the event-dimension
/// memberships of their visitors (each event counts for the hash it carries).
struct EventRollup: Sendable {
    var daily: [DayKey: Counts] = [:]
    var hourly: [Int64: Counts] = [:]
    var members: Set<Member> = []

    init(_ events: [StatEvent], clock: LocalClock) {
        for e in events where e.isInteraction { add(e, clock: clock) }
    }

    private mutating func add(_ e: StatEvent, clock: LocalClock) {
        let day = clock.day(e.time)
        let hour = clock.hour(e.time)
        var c = Counts(events: 1)
        if e.isPageview { c.pageviews = 1 }
        func count(_ dim: String, _ value: String) {
            daily[DayKey(day: day, dim: dim, value: value), default: Counts()] += c
            members.insert(Member(key: DayKey(day: day, dim: dim, value: value), visitor: e.visitor))
        }
        daily[.total(day), default: Counts()] += c
        hourly[hour, default: Counts()] += c
        members.insert(Member(key: .total(day), visitor: e.visitor))
        members.insert(Member(key: DayKey(day: day, dim: Dim.hour, value: String(hour - Int64(day) * 24)), visitor: e.visitor))
        if e.isPageview, let path = e.path { count(Dim.page, path) }
        if e.type == .track {
            if let name = e.name { count(Dim.name, name) }
            for (k, v) in e.props { count(Dim.prop(k), v) }
        }
    }
}

/// Visits from a complete set of interactions: each visitor's interactions, in time order,
/// with no gap longer than the timeout. An interaction that carries `previousVisitor` (just
/// after UTC midnight) continues that hash's visit when it is within the timeout of it.
///
/// Deterministic in the set of events, not in the order they arrived: the aggregator
/// recomputes a visitor's visits from all their stored interactions around new ones.
enum VisitBuilder {
    /// `continuing` are visits still open before the first of `events` (at most one per
    /// visitor): the events are added to them as they would be after their interactions.
    static func visits(_ events: [StatEvent], timeout: TimeInterval, continuing: [Session] = []) -> [Session] {
        let sorted = events.filter(\.isInteraction).sorted { ($0.time, $0.eventID) < ($1.time, $1.eventID) }
        var open: [String: Session] = [:]
        for visit in continuing { open[visit.visitor] = visit }
        var done: [Session] = []
        for e in sorted {
            let key = e.visitor
            if open[key].map({ e.time <= $0.last.addingTimeInterval(timeout) }) != true,
               let previous = e.previousVisitor, let moved = open[previous],
               e.time <= moved.last.addingTimeInterval(timeout) {
                // A visit that crosses UTC midnight continues under the new hash.
                open[previous] = nil
                if let replaced = open[key] { done.append(replaced) }
                open[key] = moved
            }
            if var visit = open[key], e.time <= visit.last.addingTimeInterval(timeout) {
                visit.add(e)
                open[key] = visit
            } else {
                if let ended = open[key] { done.append(ended) }
                open[key] = Session(first: e, visitor: e.visitor)
            }
        }
        return done + open.values
    }

    /// The time window whose interactions must be recomputed for new events: around them,
    /// widened until every stored visit that touches it lies inside it.
    static func window(fresh: [StatEvent], stored: [Session], timeout: TimeInterval) -> ClosedRange<Date>? {
        guard let first = fresh.map(\.time).min(), let last = fresh.map(\.time).max() else { return nil }
        var lo = first.addingTimeInterval(-timeout)
        var hi = last.addingTimeInterval(timeout)
        var changed = true
        while changed {
            changed = false
            for v in stored where v.last >= lo.addingTimeInterval(-timeout) && v.start <= hi.addingTimeInterval(timeout) {
                if v.start < lo { lo = v.start; changed = true }
                if v.last > hi { hi = v.last; changed = true }
            }
        }
        return lo...hi
    }
}

/// What replacing stored visits by recomputed ones changes: the visit counts of each
/// row (at the visit's start day and hour) and the visit-dimension memberships' refs.
struct VisitChange: Sendable {
    var removed: [Session]
    var added: [Session]

    /// Pairs the two lists, leaving out visits that did not change.
    init(stored: [Session], recomputed: [Session]) {
        var remaining: [Session: Int] = [:]
        for v in stored { remaining[v, default: 0] += 1 }
        var added: [Session] = []
        for v in recomputed {
            if let n = remaining[v], n > 0 { remaining[v] = n - 1 } else { added.append(v) }
        }
        removed = remaining.flatMap { Array(repeating: $0.key, count: $0.value) }
        self.added = added
    }

    init(removed: [Session], added: [Session]) {
        self.removed = removed
        self.added = added
    }

    var isEmpty: Bool { removed.isEmpty && added.isEmpty }

    func counts(clock: LocalClock) -> (daily: [DayKey: Counts], hourly: [Int64: Counts], refs: [Member: Int64]) {
        var daily: [DayKey: Counts] = [:]
        var hourly: [Int64: Counts] = [:]
        var refs: [Member: Int64] = [:]
        func add(_ s: Session, _ sign: Int64) {
            let c = sign > 0 ? s.counts : -s.counts
            let day = clock.day(s.start)
            daily[.total(day), default: Counts()] += c
            hourly[clock.hour(s.start), default: Counts()] += c
            for (dim, value) in s.visitValues(withExit: true) {
                daily[DayKey(day: day, dim: dim, value: value), default: Counts()] += c
                refs[Member(key: DayKey(day: day, dim: dim, value: value), visitor: s.visitor), default: 0] += sign
            }
        }
        for v in removed { add(v, -1) }
        for v in added { add(v, 1) }
        return (daily, hourly, refs.filter { $0.value != 0 })
    }
}
