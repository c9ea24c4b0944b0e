import Foundation
import TributaryModels

/// Pre-aggregates a site's events in memory: sessions, per-day and per-hour counts,
/// breakdown counts and the visitor memberships that make unique counts exact.
///
/// Pure: it starts from the visits stored so far (``sessions``) and returns what changes.
/// Visit-level counts are applied as (new − old) of each visit it touched, so a visit
/// that grows over several batches is counted once with its final values.
struct Rollup: Sendable {
    /// The stored state of a visit (`nil` for one not stored yet) and its state now.
    struct Tracked: Sendable {
        var stored: Session?
        var now: Session
    }

    /// One visitor counted in one row of one day (or hour of day, dim ``Dim/hour``).
    struct Member: Sendable, Hashable {
        var key: DayKey
        var visitor: String
    }

    let clock: LocalClock
    let timeout: TimeInterval
    /// Visits by lookup key (the hash the visitor's latest events carry).
    var sessions: [String: Tracked]
    /// Visits that ended (a newer visit replaced them) or stood alone (a late interaction).
    var finished: [Tracked] = []
    /// Lookup keys whose stored row must go (its visit moved to a new key).
    var removedKeys: Set<String> = []
    /// Event-level counts by raw key.
    var daily: [DayKey: Counts] = [:]
    var hourly: [Int64: Counts] = [:]
    var members: Set<Member> = []
    var applied = 0

    init(clock: LocalClock, timeout: TimeInterval, stored: [String: Session]) {
        self.clock = clock
        self.timeout = timeout
        sessions = stored.mapValues { Tracked(stored: $0, now: $0) }
    }

    /// Applies interactions (sorted by time, then id, by the caller).
    mutating func apply(_ events: [StatEvent]) {
        for e in events where e.isInteraction { apply(e) }
    }

    mutating func apply(_ e: StatEvent) {
        applied += 1
        let key = e.visitor
        if sessions[key].map({ $0.now.contains(e.time, timeout: timeout) }) != true,
           let previous = e.previousVisitor, let moved = sessions[previous], moved.now.contains(e.time, timeout: timeout) {
            // A visit that crosses UTC midnight: continue it under the new hash.
            sessions[previous] = nil
            removedKeys.insert(previous)
            if let replaced = sessions[key] { finished.append(replaced) }
            sessions[key] = moved
        }
        let session: Session
        if var tracked = sessions[key] {
            if tracked.now.contains(e.time, timeout: timeout) {
                tracked.now.add(e)
                sessions[key] = tracked
                session = tracked.now
            } else if e.time > tracked.now.last {
                // A new visit; the row under this key will hold it, the old one is finished.
                finished.append(tracked)
                session = Session(first: e, visitor: e.visitor)
                sessions[key] = Tracked(stored: nil, now: session)
            } else {
                // Long before the visitor's current visit: a visit of its own.
                session = Session(first: e, visitor: e.visitor)
                finished.append(Tracked(stored: nil, now: session))
            }
        } else {
            session = Session(first: e, visitor: e.visitor)
            sessions[key] = Tracked(stored: nil, now: session)
        }
        count(e, in: session)
    }

    /// The event's own counts and memberships (visit counts come from ``visitDeltas()``).
    private mutating func count(_ e: StatEvent, in session: Session) {
        let day = clock.day(e.time)
        let hour = clock.hour(e.time)
        var c = Counts(events: 1)
        if e.isPageview { c.pageviews = 1 }
        daily[.total(day), default: Counts()] += c
        hourly[hour, default: Counts()] += c
        let visitor = session.visitor
        members.insert(Member(key: .total(day), visitor: visitor))
        members.insert(Member(key: DayKey(day: day, dim: Dim.hour, value: String(hour - Int64(day) * 24)), visitor: visitor))
        if e.isPageview, let path = e.path {
            daily[DayKey(day: day, dim: Dim.page, value: path), default: Counts()] += c
            members.insert(Member(key: DayKey(day: day, dim: Dim.page, value: path), visitor: visitor))
        }
        if e.type == .track {
            if let name = e.name {
                daily[DayKey(day: day, dim: Dim.name, value: name), default: Counts()] += c
                members.insert(Member(key: DayKey(day: day, dim: Dim.name, value: name), visitor: visitor))
            }
            for (k, v) in e.props {
                daily[DayKey(day: day, dim: Dim.prop(k), value: v), default: Counts()] += c
                members.insert(Member(key: DayKey(day: day, dim: Dim.prop(k), value: v), visitor: visitor))
            }
        }
        for (dim, value) in session.visitValues(withExit: false) {
            members.insert(Member(key: DayKey(day: day, dim: dim, value: value), visitor: visitor))
        }
    }

    /// Every visit whose stored state differs from its state now.
    var changedVisits: [Tracked] {
        finished + sessions.values.filter { $0.stored != $0.now }
    }

    /// The visit-level counts to add, by raw key: each changed visit's counts now minus
    /// its stored counts (both at their start day and hour).
    func visitDeltas() -> (daily: [DayKey: Counts], hourly: [Int64: Counts]) {
        var daily: [DayKey: Counts] = [:]
        var hourly: [Int64: Counts] = [:]
        func add(_ s: Session, sign: Bool) {
            let c = sign ? s.counts : -s.counts
            let day = clock.day(s.start)
            daily[.total(day), default: Counts()] += c
            hourly[clock.hour(s.start), default: Counts()] += c
            for (dim, value) in s.visitValues(withExit: true) {
                daily[DayKey(day: day, dim: dim, value: value), default: Counts()] += c
            }
        }
        for t in changedVisits {
            if let stored = t.stored { add(stored, sign: false) }
            add(t.now, sign: true)
        }
        return (daily, hourly)
    }

    /// The visits to store, by lookup key (only those that changed).
    var sessionsToStore: [(key: String, session: Session)] {
        sessions.filter { $0.value.stored != $0.value.now }.map { ($0.key, $0.value.now) }
    }
}
