import ArgumentParser
import Foundation
import Logging
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// `aggregator rebuild --site S --from D1 --to D2`: recomputes those local days from
/// hydration's stored events, one transaction per day, so a fix in enrichment (or events
/// too late for live aggregation) can be replayed into exact numbers. Only the events of
/// batches the aggregator has applied (its ledger holds them) are counted: a batch still
/// on its way (hydrated, not yet aggregated) is added by live aggregation when it arrives,
/// and counting it here too would count it twice.
struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Recompute a site's statistics for a range of days from hydration's stored events.",
        discussion: """
            Each day (in the site's time zone) is replaced in one transaction: its daily and hourly rows, and the \
            carried visitors of the day after. Days whose visits may still be open (ended less than the session \
            timeout ago) are refused. Breakdowns keep the day's top values (aggregator.breakdownLimit). Only \
            batches the aggregator has applied are counted; the events of batches not yet aggregated are reported \
            as pending and left to live aggregation, which adds them when their batch arrives.
            """)

    @OptionGroup var options: CommonOptions
    @Option(help: "The site's id or name.") var site: String
    @Option(help: "The first day, YYYY-MM-DD (site time).") var from: String
    @Option(help: "The last day, YYYY-MM-DD (site time).") var to: String
    @Flag(help: "Print what would change; change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard let a = LocalClock.day(fromText: from) else { throw ValidationError("--from must be a date YYYY-MM-DD") }
        guard let b = LocalClock.day(fromText: to) else { throw ValidationError("--to must be a date YYYY-MM-DD") }
        guard b >= a else { throw ValidationError("--to is before --from") }
        guard b - a < 366 else { throw ValidationError("rebuild at most 366 days at once") }
    }

    func run() async throws {
        let reports = try await CommandDatabase.with(config: options.config, label: "rebuild") { db -> [JSONValue] in
            let record = try db.site(site)
            let rebuilder = Rebuilder(postgres: db.postgres, site: record.id, clock: LocalClock(identifier: record.timeZone),
                                      props: record.props, configuration: db.configuration)
            var reports: [JSONValue] = []
            for day in LocalClock.day(fromText: from)!...LocalClock.day(fromText: to)! {
                let report = try await rebuilder.rebuild(day: day, dryRun: dryRun, now: Date())
                reports.append(report.json)
                if !json { print(report.line(dryRun: dryRun)) }
            }
            return reports
        }
        if json { print(JSONValue.array(reports).jsonText) }
    }
}

/// Rebuilds one site's days (see ``RebuildCommand``).
struct Rebuilder: Sendable {
    let postgres: PostgresClient
    let site: Int64
    let clock: LocalClock
    let props: [String]
    let configuration: AggregatorConfiguration
    /// The most events one day's rebuild reads (the day and two either side).
    var maxEvents = 5_000_000

    struct Report: Sendable {
        var day: Int32
        var events: Int
        /// Events of the day whose batch the aggregator has not applied yet (left to live
        /// aggregation, not counted by the rebuild).
        var pending = 0
        var rowsChanged: Int
        var before: Counts
        var after: Counts

        var json: JSONValue {
            func totals(_ c: Counts) -> JSONValue {
                .object(["visitors": .int(c.visitors), "visits": .int(c.visits), "pageviews": .int(c.pageviews),
                         "events": .int(c.events)])
            }
            return .object(["day": .string(LocalClock.dateText(day)), "events": .int(Int64(events)),
                            "eventsPending": .int(Int64(pending)),
                            "rowsChanged": .int(Int64(rowsChanged)), "before": totals(before), "after": totals(after)])
        }

        func line(dryRun: Bool) -> String {
            "\(LocalClock.dateText(day)): \(events) events read, \(rowsChanged) rows \(dryRun ? "would change" : "changed"); "
                + "visitors \(before.visitors) → \(after.visitors), visits \(before.visits) → \(after.visits), "
                + "pageviews \(before.pageviews) → \(after.pageviews)"
                + (pending > 0 ? "; \(pending) events of batches not yet aggregated left to live aggregation" : "")
        }
    }

    func rebuild(day: Int32, dryRun: Bool, now: Date) async throws -> Report {
        let timeout = configuration.sessionTimeoutSeconds
        guard clock.start(ofDay: day + 1).addingTimeInterval(timeout) <= now else {
            throw DaemonError("\(LocalClock.dateText(day)) may still have open visits; rebuild days that ended over \(Int(timeout / 60)) minutes ago")
        }
        return try await postgres.withTransaction { tx -> Report in
            try await AggregatorStore.lockSite(tx, site: site)
            let (events, pending) = try await hydratedEvents(tx, from: clock.start(ofDay: day - 2), to: clock.start(ofDay: day + 3))
            let previous = try await storedValues(tx, day: day - 1)
            let builder = DayRebuild(clock: clock, timeout: timeout, limit: configuration.breakdownLimit)
            let result = builder.rows(day: day, events: events, previousDayMapping: { Self.map($0, previous) })
            let stored = try await storedRows(tx, day: day)
            var changed = 0
            for key in Set(stored.keys).union(result.daily.keys) where stored[key] != result.daily[key] { changed += 1 }
            let dayStart = clock.start(ofDay: day), dayEnd = clock.start(ofDay: day + 1)
            let report = Report(day: day, events: events.count, pending: pending.filter { $0 >= dayStart && $0 < dayEnd }.count,
                                rowsChanged: changed, before: stored[.total(day)] ?? Counts(),
                                after: result.daily[.total(day)] ?? Counts())
            guard !dryRun else { return report }
            try await replaceRows(tx, day: day, result)
            try await updateNextDayCarried(tx, day: day, events: events, result: result, builder: builder)
            try await Spans.invalidate(tx, site: site, days: [day, day + 1])
            if day >= LocalClock(identifier: "UTC").day(now) - Int32(configuration.lateEventDays + 2) {
                try await replaceState(tx, day: day, events: events, result: result)
            }
            return report
        }
    }

    static func map(_ key: DayKey, _ stored: Set<DayKey>) -> DayKey {
        guard Dim.folds(key.dim), !stored.contains(key) else { return key }
        return DayKey(day: key.day, dim: key.dim, value: Dim.other)
    }

    /// Interactions and other events of the site whose time is in [from, to), of batches the
    /// aggregator has applied; and the times of those of batches it has not applied yet.
    /// (Under the site's lock no turn of the site is half done, so the ledger is settled.
    /// The ledger is never pruned; a batch applied long ago is still in it.)
    func hydratedEvents(_ db: PostgresConnection, from: Date, to: Date) async throws -> (events: [StatEvent], pending: [Date]) {
        let rows = try await db.query("""
            SELECT e.event_id, e.type, e.name, e.event_time, e.visitor_hash, e.previous_visitor_hash,
                   e.enrichment::text AS enrichment, e.properties::text AS properties,
                   EXISTS (SELECT 1 FROM aggregator.ledger l WHERE l.site_id = e.site_id AND l.batch_id = e.batch_id) AS applied
            FROM hydration.events e
            WHERE e.site_id = $1 AND e.event_time >= $2 AND e.event_time < $3 AND e.received_at >= $4
              AND e.type IN ('page', 'screen', 'track')
            LIMIT $5
            """, [site, from, to, from.addingTimeInterval(-86_400), maxEvents + 1]).rows
        guard rows.count <= maxEvents else {
            throw DaemonError("more than \(maxEvents) events around one day; rebuild cannot hold them in memory")
        }
        var pending: [Date] = []
        let events = try rows.compactMap { row -> StatEvent? in
            guard let type = EventType(rawValue: try row.string("type") ?? ""), let time = try row.date("event_time") else {
                return nil
            }
            let enrichment = (try? JSONValue.parse(Array((try row.string("enrichment") ?? "{}").utf8)))?.objectValue ?? [:]
            let properties = try row.string("properties").flatMap { try? JSONValue.parse(Array($0.utf8)).objectValue }
            let e = StatEvent(eventID: try row.int("event_id") ?? 0, type: type, name: try row.string("name"), time: time,
                              visitor: try row.string("visitor_hash") ?? "",
                              previousVisitor: try row.string("previous_visitor_hash"), enrichment: enrichment,
                              properties: properties, props: props)
            guard e.isInteraction else { return nil }
            guard try row.bool("applied") ?? false else {
                pending.append(time)
                return nil
            }
            return e
        }
        return (events, pending)
    }

    func storedValues(_ db: PostgresConnection, day: Int32) async throws -> Set<DayKey> {
        let rows = try await db.query("SELECT dim, value FROM aggregator.daily WHERE site_id = $1 AND day = $2::date",
                                      [site, LocalClock.dateText(day)]).rows
        return Set(try rows.map { DayKey(day: day, dim: try $0.string("dim") ?? "", value: try $0.string("value") ?? "") })
    }

    func storedRows(_ db: PostgresConnection, day: Int32) async throws -> [DayKey: Counts] {
        let rows = try await db.query("""
            SELECT dim, value, visitors, visitors_carried, visits, pageviews, events, bounces, duration, visit_pageviews
            FROM aggregator.daily WHERE site_id = $1 AND day = $2::date
            """, [site, LocalClock.dateText(day)]).rows
        var out: [DayKey: Counts] = [:]
        for row in rows {
            out[DayKey(day: day, dim: try row.string("dim") ?? "", value: try row.string("value") ?? "")] = Counts(
                visitors: try row.int("visitors") ?? 0, carried: try row.int("visitors_carried") ?? 0,
                visits: try row.int("visits") ?? 0, pageviews: try row.int("pageviews") ?? 0,
                events: try row.int("events") ?? 0, bounces: try row.int("bounces") ?? 0,
                duration: try row.int("duration") ?? 0, visitPageviews: try row.int("visit_pageviews") ?? 0)
        }
        return out
    }

    func replaceRows(_ tx: PostgresConnection, day: Int32, _ result: DayRebuild.Result) async throws {
        try await tx.query("DELETE FROM aggregator.daily WHERE site_id = $1 AND day = $2::date", [site, LocalClock.dateText(day)])
        try await tx.query("DELETE FROM aggregator.hourly WHERE site_id = $1 AND hour >= $2::timestamp AND hour < $3::timestamp",
                           [site, LocalClock.hourText(Int64(day) * 24), LocalClock.hourText(Int64(day + 1) * 24)])
        try await AggregatorStore.addDaily(tx, site: site, result.daily)
        try await AggregatorStore.addHourly(tx, site: site, result.hourly)
    }

    /// The day after keeps its rows; only its carried visitors depend on this day.
    func updateNextDayCarried(_ tx: PostgresConnection, day: Int32, events: [StatEvent], result: DayRebuild.Result,
                              builder: DayRebuild) async throws {
        let next = try await storedValues(tx, day: day + 1)
        guard !next.isEmpty else { return }
        let visits = VisitBuilder.visits(events, timeout: builder.timeout)
        let today = Set(result.members.keys)
        var carried: [DayKey: Int64] = [:]
        for key in next { carried[key] = 0 }
        for m in builder.members(day: day + 1, events: events, visits: visits).keys where m.key.dim != Dim.hour {
            let key = Self.map(m.key, next)
            let before = Member(key: DayKey(day: day, dim: key.dim, value: key.value), visitor: m.visitor)
            if today.contains(before) && carried[key] != nil { carried[key]! += 1 }
        }
        let keys = Array(carried.keys)
        try await tx.query("""
            UPDATE aggregator.daily d SET visitors_carried = k.c
            FROM unnest($3::text[], $4::text[], $5::bigint[]) AS k(dim, value, c)
            WHERE d.site_id = $1 AND d.day = $2::date AND d.dim = k.dim AND d.value = k.value
            """, [site, LocalClock.dateText(day + 1), PostgresArray.text(keys.map(\.dim)),
                  PostgresArray.text(keys.map(\.value)), PostgresArray.ints(keys.map { carried[$0]! })])
    }

    /// Within the live window, the interactions, visits and memberships of the day are
    /// replaced too, so later live events build on the rebuilt state.
    func replaceState(_ tx: PostgresConnection, day: Int32, events: [StatEvent], result: DayRebuild.Result) async throws {
        let start = clock.start(ofDay: day), end = clock.start(ofDay: day + 1)
        try await tx.query("DELETE FROM aggregator.visitor_days WHERE site_id = $1 AND day = $2::date", [site, LocalClock.dateText(day)])
        try await tx.query("DELETE FROM aggregator.visits WHERE site_id = $1 AND started_at >= $2 AND started_at < $3", [site, start, end])
        try await tx.query("DELETE FROM aggregator.visitor_events WHERE site_id = $1 AND at >= $2 AND at < $3", [site, start, end])
        try await Memberships.write(tx, site: site, members: result.members)
        try await AggregatorStore.replaceVisits(tx, site: site, VisitChange(stored: [], recomputed: result.visits))
        try await AggregatorStore.insertEvents(tx, site: site, events.filter { $0.time >= start && $0.time < end })
    }
}
