import Foundation
import Logging
import Metrics
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// Consumes the `aggregate` queue: for a turn of one site's hydrated batches, in one
/// transaction, takes the site's lock, claims the batches in the ledger, pre-aggregates
/// their events in memory (visits, rows, memberships) and upserts the differences, then
/// records each batch's counts. A batch already in the ledger is skipped. After the commit
/// it updates the current-visitors set in Redis.
struct AggregatorHandler: QueueHandler {
    let postgres: PostgresClient
    let catalog: SiteCatalog
    let realtime: Realtime
    let configuration: AggregatorConfiguration
    let logger: Logger
    var now: @Sendable () -> Date = { Date() }
    /// Where each turn's result goes (the health-checker's job expectations).
    var jobs: JobReporter?
    let applied = Counter(label: "tributary_aggregator_events_total", dimensions: [("outcome", "applied")])
    let ignored = Counter(label: "tributary_aggregator_events_total", dimensions: [("outcome", "ignored")])
    let late = Counter(label: "tributary_aggregator_events_total", dimensions: [("outcome", "late")])
    let turnTimer = Timer(label: "tributary_aggregator_turn_seconds", preferredDisplayUnit: .seconds)

    func handle(_ items: [QueueItem]) async throws {
        for site in Set(items.compactMap { Int64($0.site) }) where catalog.site(site) == nil {
            // A site added since the last refresh: its time zone and properties are needed now.
            try await catalog.refresh()
            if catalog.site(site) == nil {
                logger.warning("site unknown to the collector; aggregating in UTC", metadata: ["site.id": "\(site)"])
            }
        }
        var bySite: [Int64: [AggregateMessage]] = [:]
        for item in items {
            guard let message = AggregateMessage.parse(item.payload, props: catalog.props) else {
                try await recordBadMessage(item)
                continue
            }
            bySite[message.siteID, default: []].append(message)
        }
        for (site, messages) in bySite {
            let started = ContinuousClock.now
            let result = try await postgres.withTransaction { tx in try await apply(tx, site: site, messages) }
            turnTimer.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            applied.increment(by: result.applied)
            ignored.increment(by: result.ignored)
            late.increment(by: result.late)
            jobs?.record("batch", counts: ["batches": Int64(messages.count), "applied": Int64(result.applied),
                                           "ignored": Int64(result.ignored), "late": Int64(result.late)])
            do {
                try await realtime.record(site: site, seen: result.seen, now: now())
            } catch {
                logger.warning("could not update current visitors", metadata: ["site.id": "\(site)", "error": "\(error)"])
            }
        }
    }

    struct TurnResult: Sendable {
        var applied = 0
        var ignored = 0
        var late = 0
        /// Visitors by the time they were last seen in this turn (for current visitors).
        var seen: [String: Date] = [:]
    }

    /// Applies one site's messages inside `tx`; batches applied before are skipped.
    func apply(_ tx: PostgresConnection, site: Int64, _ messages: [AggregateMessage]) async throws -> TurnResult {
        try await AggregatorStore.lockSite(tx, site: site)
        let claimed = try await AggregatorStore.claim(tx, site: site, batches: messages.map(\.batchID))
        let clock = catalog.clock(site)
        let cutoff = clock.day(now()) - Int32(configuration.lateEventDays)
        var result = TurnResult()
        var events: [StatEvent] = []
        var counts: [(batch: Int64, received: Int, applied: Int, ignored: Int, late: Int, pageviews: Int)] = []
        var seenBatches: Set<Int64> = []
        for message in messages where claimed.contains(message.batchID) && seenBatches.insert(message.batchID).inserted {
            var row = (batch: message.batchID, received: message.received, applied: 0, ignored: 0, late: 0, pageviews: 0)
            for e in message.events {
                if !e.isInteraction {
                    row.ignored += 1
                } else if clock.day(e.time) < cutoff {
                    row.late += 1
                } else {
                    row.applied += 1
                    if e.isPageview { row.pageviews += 1 }
                    events.append(e)
                }
            }
            counts.append(row)
            result.applied += row.applied
            result.ignored += row.ignored
            result.late += row.late
        }
        guard !counts.isEmpty else { return result }
        try await AggregatorStore.insertEvents(tx, site: site, events)
        let change = try await recomputeVisits(tx, site: site, fresh: events)
        let (daily, hourly) = try await settle(tx, site: site, events: EventRollup(events, clock: clock),
                                               visits: change.counts(clock: clock))
        try await AggregatorStore.addDaily(tx, site: site, daily)
        // Days old enough to be in a span (late events, visits recomputed back) invalidate it.
        let open = clock.day(now()) - Spans.openDays
        try await Spans.invalidate(tx, site: site, days: Set(daily.keys.lazy.map(\.day).filter { $0 <= open }))
        try await AggregatorStore.addHourly(tx, site: site, hourly)
        try await AggregatorStore.replaceVisits(tx, site: site, change)
        try await AggregatorStore.recordCounts(tx, site: site, rows: counts)
        for e in events where result.seen[e.visitor].map({ $0 < e.time }) ?? true { result.seen[e.visitor] = e.time }
        return result
    }

    /// Recomputes the visits the new interactions touch, group by group of linked visitor
    /// hashes (see `VisitPlan`), so the result does not depend on the order batches came in.
    func recomputeVisits(_ tx: PostgresConnection, site: Int64, fresh: [StatEvent]) async throws -> VisitChange {
        var hashes = Set(fresh.map(\.visitor))
        for e in fresh { if let p = e.previousVisitor { hashes.insert(p) } }
        let links = try await AggregatorStore.links(tx, site: site, hashes)
        for (hash, previous) in links { hashes.insert(hash); hashes.insert(previous) }
        let stored = try await AggregatorStore.visits(tx, site: site, hashes: hashes)
        let timeout = configuration.sessionTimeoutSeconds
        let plan = VisitPlan(fresh: fresh, stored: stored, links: links, timeout: timeout)
        let events = try await AggregatorStore.events(tx, site: site, windows: plan.windows)
        return plan.change(reading: events, timeout: timeout)
    }

    /// The row counts to add: event and visit counts plus the changes in unique visitors,
    /// with breakdown values past the limit folded into "(other)".
    func settle(_ tx: PostgresConnection, site: Int64, events: EventRollup,
                visits: (daily: [DayKey: Counts], hourly: [Int64: Counts], refs: [Member: Int64])) async throws
        -> (daily: [DayKey: Counts], hourly: [Int64: Counts]) {
        var rawDaily = events.daily
        for (k, c) in visits.daily { rawDaily[k, default: Counts()] += c }
        var hourly = events.hourly
        for (k, c) in visits.hourly { hourly[k, default: Counts()] += c }
        let keys = Set(rawDaily.keys).union(events.members.map(\.key)).union(visits.refs.keys.map(\.key))
        let mapping = try await AggregatorStore.resolve(tx, site: site, keys: keys, limit: configuration.breakdownLimit)
        var daily: [DayKey: Counts] = [:]
        for (k, c) in rawDaily { daily[mapping[k] ?? k, default: Counts()] += c }
        let members = Set(events.members.map { Member(key: mapping[$0.key] ?? $0.key, visitor: $0.visitor) })
        var refs: [Member: Int64] = [:]
        for (m, n) in visits.refs { refs[Member(key: mapping[m.key] ?? m.key, visitor: m.visitor), default: 0] += n }
        refs = refs.filter { $0.value != 0 }
        var state = try await Memberships.load(tx, site: site,
                                               visitors: Set(members.map(\.visitor)).union(refs.keys.map(\.visitor)))
        let added = Self.addMembers(members, to: &state)
        Self.countVisitors(added, daily: &daily, hourly: &hourly)
        Self.applyRefs(refs, to: &state, daily: &daily)
        try await state.save(tx, site: site)
        return (daily, hourly)
    }

    /// A membership recorded now, with whether the same visitor was already in the same row
    /// the day before or after (never for hour memberships, which carry nothing).
    struct NewMember: Sendable {
        var member: Member
        var before: Bool
        var after: Bool
    }

    /// Records the event-dimension memberships; returns those that are new.
    static func addMembers(_ members: Set<Member>, to state: inout Memberships) -> [NewMember] {
        let fresh = members.filter { !state.contains($0) }
        let added = fresh.map { m in
            m.key.dim == Dim.hour ? NewMember(member: m, before: false, after: false)
                : NewMember(member: m, before: state.contains(m.shifted(-1)), after: state.contains(m.shifted(1)))
        }
        for m in fresh { state.set(m, 1) }
        return added
    }

    /// Applies visit-dimension membership changes: a row whose refs go from 0 to more adds
    /// a unique visitor, one that goes to 0 removes one, and carried visitors follow.
    static func applyRefs(_ delta: [Member: Int64], to state: inout Memberships, daily: inout [DayKey: Counts]) {
        guard !delta.isEmpty else { return }
        let stored = state
        var updated: [Member: Int64] = [:]
        for (m, n) in delta { updated[m] = stored[m] + n }
        func before(_ m: Member) -> Bool { stored.contains(m) }
        func after(_ m: Member) -> Bool { (updated[m] ?? stored[m]) > 0 }
        var pairs: Set<Member> = []
        for m in delta.keys where before(m) != after(m) {
            daily[m.key, default: Counts()].visitors += after(m) ? 1 : -1
            pairs.insert(m)
            pairs.insert(m.shifted(1))
        }
        // Carried at (day, row): the visitor is in the row on that day and the day before.
        for m in pairs {
            let was = before(m) && before(m.shifted(-1))
            let isNow = after(m) && after(m.shifted(-1))
            if was != isNow { daily[m.key, default: Counts()].carried += isNow ? 1 : -1 }
        }
        for (m, n) in updated { state.set(m, n) }
    }

    /// Adds new event-dimension memberships as unique visitors, and as carried visitors where
    /// the same visitor is in the same row the day before (stored, or recorded in this turn).
    static func countVisitors(_ added: [NewMember], daily: inout [DayKey: Counts],
                              hourly: inout [Int64: Counts]) {
        let fresh = Set(added.map(\.member))
        for m in added {
            let key = m.member.key
            if key.dim == Dim.hour {
                hourly[Int64(key.day) * 24 + (Int64(key.value) ?? 0), default: Counts()].visitors += 1
                continue
            }
            daily[key, default: Counts()].visitors += 1
            var yesterday = m.member
            yesterday.key.day -= 1
            if m.before || fresh.contains(yesterday) { daily[key, default: Counts()].carried += 1 }
            var tomorrow = m.member
            tomorrow.key.day += 1
            if m.after && !fresh.contains(tomorrow) { daily[tomorrow.key, default: Counts()].carried += 1 }
        }
    }

    private func recordBadMessage(_ item: QueueItem) async throws {
        logger.error("aggregate queue item is not a hydrated batch; recorded in aggregator.bad_messages",
                     metadata: ["site.id": "\(item.site)"])
        try await postgres.query("INSERT INTO aggregator.bad_messages (site_id, reason, raw) VALUES ($1, $2, $3)", [
            Int64(item.site) ?? 0, "not a hydrated batch message (docs/queues.md, aggregate)",
            String(decoding: item.payload.prefix(1_000_000), as: UTF8.self).replacingOccurrences(of: "\u{0}", with: "\u{FFFD}"),
        ])
    }
}
