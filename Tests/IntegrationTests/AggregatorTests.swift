import Foundation
import Logging
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Aggregator
@testable import Hydration
import TributaryRuntime

/// The fixed event set of the statistics tests, for a site in America/New_York (UTC−5 in
/// January): visitor A's visit starts at 23:50 local on the 9th and crosses local midnight;
/// B makes two visits an hour apart on the 10th; C bounces; a bot and an identify are ignored.
enum StatsEvents {
    typealias F = AggregatorFixture
    static let batches: [[JSONValue]] = [
        [F.event(1, "page", at: "2030-01-10T04:50:00.000Z", visitor: "A", path: "/home", source: "Google", country: "US"),
         F.event(2, "page", at: "2030-01-10T14:00:00.000Z", visitor: "B", path: "/home", country: "DE", browser: "Firefox")],
        [F.event(3, "page", at: "2030-01-10T05:10:00.000Z", visitor: "A", path: "/pricing", source: "Google", country: "US"),
         F.event(4, "track", at: "2030-01-10T05:15:00.000Z", visitor: "A", path: "/pricing", name: "Signup",
                 source: "Google", country: "US", props: ["plan": .string("pro")]),
         F.event(5, "page", at: "2030-01-10T14:30:00.000Z", visitor: "C", path: "/home", country: "FR", utm: "newsletter"),
         F.event(6, "page", at: "2030-01-10T14:31:00.000Z", visitor: "D", path: "/home", browser: "Googlebot", bot: true),
         F.event(7, "identify", at: "2030-01-10T14:32:00.000Z", visitor: "A")],
        [F.event(8, "page", at: "2030-01-10T15:00:00.000Z", visitor: "B", path: "/blog", country: "DE", browser: "Firefox")],
    ]

    static func items(site: Int64) -> [QueueItem] {
        batches.enumerated().map { F.item(site: site, batch: Int64($0.offset + 1), $0.element) }
    }
}

@Suite("Aggregator: statistics exact under replays, restarts and concurrency", .serialized)
struct AggregatorTests {
    let f: AggregatorFixture

    init() async throws {
        f = try await AggregatorFixture()
    }

    func apply(_ site: Int64) async throws {
        for item in StatsEvents.items(site: site) { try await f.handler.handle([item]) }
    }

    @Test("every statistic matches the hand-computed numbers, across an hour, a day and a time-zone boundary")
    func handComputed() async throws {
        let site = try await f.addSite()
        try await apply(site)
        // [visitors, carried, visits, pageviews, events, bounces, duration, visit_pageviews]
        #expect(try await f.daily(site, "2030-01-09") == [1, 0, 1, 1, 1, 0, 1500, 2])
        #expect(try await f.daily(site, "2030-01-10") == [3, 1, 3, 4, 5, 3, 0, 3])
        #expect(try await f.daily(site, "2030-01-10", "page", "/home") == [2, 0, 0, 2, 2, 0, 0, 0])
        #expect(try await f.daily(site, "2030-01-09", "page", "/home") == [1, 0, 0, 1, 1, 0, 0, 0])
        #expect(try await f.daily(site, "2030-01-10", "source", "Google") == [], "visit values count on the visit's first day")
        #expect(try await f.daily(site, "2030-01-09", "source", "Google") == [1, 0, 1, 0, 0, 0, 1500, 2])
        #expect(try await f.daily(site, "2030-01-10", "source", "Direct / None") == [2, 0, 3, 0, 0, 3, 0, 3])
        #expect(try await f.daily(site, "2030-01-09", "exit_page", "/pricing") == [1, 0, 1, 0, 0, 0, 1500, 2])
        #expect(try await f.daily(site, "2030-01-09", "exit_page", "/home") == [], "the visit's exit moved on to /pricing")
        #expect(try await f.daily(site, "2030-01-10", "entry_page", "/blog") == [1, 0, 1, 0, 0, 1, 0, 1])
        #expect(try await f.daily(site, "2030-01-10", "name", "Signup") == [1, 0, 0, 0, 1, 0, 0, 0])
        #expect(try await f.daily(site, "2030-01-10", "props:plan", "pro") == [1, 0, 0, 0, 1, 0, 0, 0])
        #expect(try await f.daily(site, "2030-01-10", "utm_source", "newsletter") == [1, 0, 1, 0, 0, 1, 0, 1])
        #expect(try await f.daily(site, "2030-01-10", "country", "DE") == [1, 0, 2, 0, 0, 2, 0, 2])
        #expect(try await f.daily(site, "2030-01-10", "browser", "Googlebot") == [], "bots are not counted")
        let hours = try await f.db.query("""
            SELECT hour::text AS h, visitors, visits, pageviews, events FROM aggregator.hourly WHERE site_id = $1 ORDER BY hour
            """, [site]).rows.map { "\(try $0.string("h")!) \(try $0.int("visitors")!) \(try $0.int("visits")!) \(try $0.int("pageviews")!) \(try $0.int("events")!)" }
        #expect(hours == ["2030-01-09 23:00:00 1 1 1 1", "2030-01-10 00:00:00 1 0 1 2",
                          "2030-01-10 09:00:00 2 2 2 2", "2030-01-10 10:00:00 1 1 1 1"])
        let ledger = try await f.db.query("""
            SELECT sum(events_received) AS r, sum(events_applied) AS a, sum(events_ignored) AS i FROM aggregator.ledger WHERE site_id = $1
            """, [site]).first
        #expect(try ledger?.int("r") == 8 && ledger?.int("a") == 6 && ledger?.int("i") == 2)
    }

    @Test("replaying the same batches, in one turn or again one by one, changes no number")
    func replays() async throws {
        let site = try await f.addSite()
        try await apply(site)
        let before = try await f.snapshot(site)
        try await f.handler.handle(StatsEvents.items(site: site))
        try await apply(site)
        #expect(try await f.snapshot(site) == before)
    }

    @Test("two aggregators applying the same batches at once double-count nothing")
    func concurrentInstances() async throws {
        let reference = try await f.addSite()
        try await apply(reference)
        let site = try await f.addSite()
        let other = AggregatorHandler(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime,
                                      configuration: f.configuration, logger: f.handler.logger, now: f.handler.now)
        let items = StatsEvents.items(site: site)
        async let a: Void = { for item in items { try await f.handler.handle([item]) } }()
        async let b: Void = { for item in items { try await other.handle([item]) } }()
        _ = try await (a, b)
        #expect(try await f.snapshot(site) == f.snapshot(reference))
    }

    @Test("a visit that crosses UTC midnight continues under yesterday's hash and counts one visitor")
    func midnightContinuity() async throws {
        let site = try await f.addSite(zone: "UTC")
        typealias F = AggregatorFixture
        try await f.handler.handle([F.item(site: site, batch: 1, [
            F.event(1, "page", at: "2030-01-09T23:55:00.000Z", visitor: "old", path: "/a"),
        ])])
        try await f.handler.handle([F.item(site: site, batch: 2, [
            F.event(2, "page", at: "2030-01-10T00:05:00.000Z", visitor: "new", previous: "old", path: "/b"),
        ])])
        try await f.handler.handle([F.item(site: site, batch: 3, [
            F.event(3, "page", at: "2030-01-10T00:30:00.000Z", visitor: "new", path: "/c"),
        ])])
        #expect(try await f.daily(site, "2030-01-09") == [1, 0, 1, 1, 1, 0, 2100, 3], "one visit of 35 minutes")
        #expect(try await f.daily(site, "2030-01-10") == [1, 0, 0, 2, 2, 0, 0, 0],
                "unique visitors count the hash each event carries")
    }

    @Test("a breakdown keeps the first N values of a day and folds the rest into (other)")
    func topNFolds() async throws {
        let limited = try await AggregatorFixture(breakdownLimit: 2)
        let site = try await limited.addSite(zone: "UTC")
        typealias F = AggregatorFixture
        let events = (1...5).map { i in
            F.event(Int64(i), "page", at: "2030-01-10T10:0\(i):00.000Z", visitor: "v\(i % 2)", path: "/p\(i)")
        }
        try await limited.handler.handle([F.item(site: site, batch: 1, Array(events[0..<3]))])
        try await limited.handler.handle([F.item(site: site, batch: 2, Array(events[3...]))])
        try await limited.handler.handle([F.item(site: site, batch: 3, [
            F.event(9, "page", at: "2030-01-10T10:09:00.000Z", visitor: "v9", path: "/p1"),
        ])])
        let rows = try await limited.db.query("""
            SELECT value, visitors, pageviews FROM aggregator.daily WHERE site_id = $1 AND dim = 'page' ORDER BY value COLLATE "C"
            """, [site]).rows.map { "\(try $0.string("value")!) \(try $0.int("visitors")!) \(try $0.int("pageviews")!)" }
        #expect(rows == ["(other) 2 3", "/p1 2 2", "/p2 1 1"])
    }
}

@Suite("Aggregator: rebuild from hydration's stored events", .serialized)
struct AggregatorRebuildTests {
    let f: AggregatorFixture
    let admin: PostgresClient

    init() async throws {
        f = try await AggregatorFixture()
        admin = PostgresClient(configuration: f.env.postgres(), maximumConnections: 1, threadPool: f.pool.pool)
        let hydration = PostgresClient(configuration: f.env.postgres(role: "tributary_hydration"), maximumConnections: 1,
                                       threadPool: f.pool.pool)
        _ = try await hydration.withConnection { try await HydrationSchema.migrator.migrate(using: $0) }
        try await EventPartitions(postgres: hydration, weeksAhead: 1, retentionWeeks: 600, logger: Logger(label: "test"))
            .ensure(around: ISO8601.parse("2030-01-10T00:00:00Z")!)
        hydration.close()
    }

    /// Stores the fixed event set in hydration.events for `site`, as hydration would have;
    /// with `applied`, the aggregator's ledger also holds its batches (as if they had been
    /// applied, their events counted late), without any of their numbers.
    func storeHydrated(site: Int64, applied: Bool = false) async throws {
        if applied {
            try await admin.query("INSERT INTO aggregator.ledger (site_id, batch_id, events_received, events_late) SELECT $1, b, 0, 0 FROM generate_series(1, $2) AS b",
                                  [site, Int64(StatsEvents.batches.count)])
        }
        for (b, batch) in StatsEvents.batches.enumerated() {
            for e in batch {
                try await admin.query("""
                    INSERT INTO hydration.events (site_id, event_id, received_at, batch_id, message_id, type, name, event_time,
                        visitor_hash, previous_visitor_hash, enrichment, properties)
                    VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7, $3::timestamptz, $8, $9, $10::jsonb, $11::jsonb)
                    """, [site, e["eventId"]?.doubleValue.map { Int64($0) } ?? 0, e["timestamp"]?.stringValue ?? "", Int64(b + 1),
                          e["messageId"]?.stringValue ?? "", e["type"]?.stringValue ?? "", e["name"]?.stringValue,
                          e["visitorHash"]?.stringValue ?? "", e["previousVisitorHash"]?.stringValue,
                          PostgresValue.json(e["enrichment"]?.jsonText ?? "{}"), e["properties"].map { PostgresValue.json($0.jsonText) } ?? .null])
            }
        }
    }

    func rebuilder(_ site: Int64) -> Rebuilder {
        Rebuilder(postgres: f.db, site: site, clock: f.catalog.clock(site), props: f.catalog.props(site),
                  configuration: f.configuration)
    }

    func rebuild(_ site: Int64, dryRun: Bool = false) async throws -> [Rebuilder.Report] {
        var reports: [Rebuilder.Report] = []
        for day in LocalClock.day(fromText: "2030-01-08")!...LocalClock.day(fromText: "2030-01-11")! {
            reports.append(try await rebuilder(site).rebuild(day: day, dryRun: dryRun, now: ISO8601.parse("2030-01-13T00:00:00Z")!))
        }
        return reports
    }

    @Test("rebuilding from stored events gives the numbers live aggregation gave")
    func matchesLive() async throws {
        let live = try await f.addSite()
        for item in StatsEvents.items(site: live) { try await f.handler.handle([item]) }
        let rebuilt = try await f.addSite()
        try await storeHydrated(site: rebuilt, applied: true)
        _ = try await rebuild(rebuilt)
        #expect(try await f.snapshot(rebuilt) == f.snapshot(live))
        #expect(try await rebuild(rebuilt).allSatisfy { $0.rowsChanged == 0 }, "rebuilding again changes nothing")
    }

    @Test("a batch hydrated but not yet aggregated is left to live aggregation, so it is counted once")
    func pendingBatch() async throws {
        let site = try await f.addSite()
        try await storeHydrated(site: site)
        let items = StatsEvents.items(site: site)
        for item in items.dropLast() { try await f.handler.handle([item]) }
        let reports = try await rebuild(site)
        #expect(reports.map(\.pending) == [0, 0, 1, 0], "batch 3's page view of 2030-01-10 is still on its way")
        #expect(reports[2].json["eventsPending"] == .int(1))
        try await f.handler.handle(Array(items.suffix(1)))
        #expect(try await f.daily(site, "2030-01-10") == [3, 1, 3, 4, 5, 3, 0, 3])
        let live = try await f.addSite()
        for item in StatsEvents.items(site: live) { try await f.handler.handle([item]) }
        #expect(try await f.snapshot(site) == f.snapshot(live))
    }

    @Test("after an enrichment fix, rebuild yields the new exact numbers; --dry-run changes nothing")
    func afterEdit() async throws {
        let site = try await f.addSite()
        try await storeHydrated(site: site)
        for item in StatsEvents.items(site: site) { try await f.handler.handle([item]) }
        try await admin.query("""
            UPDATE hydration.events SET enrichment = jsonb_set(enrichment, '{country}', '"CA"')
            WHERE site_id = $1 AND visitor_hash = 'A'
            """, [site])
        let before = try await f.snapshot(site)
        let dry = try await rebuild(site, dryRun: true)
        #expect(dry.map(\.rowsChanged).reduce(0, +) == 2, "the US row goes and a CA row comes")
        #expect(try await f.snapshot(site) == before)
        _ = try await rebuild(site)
        #expect(try await f.daily(site, "2030-01-09", "country", "US") == [])
        #expect(try await f.daily(site, "2030-01-09", "country", "CA") == [1, 0, 1, 0, 0, 0, 1500, 2])
        #expect(try await f.daily(site, "2030-01-10") == [3, 1, 3, 4, 5, 3, 0, 3])
    }

    @Test("a rebuild deletes the spans over the days it replaces, so breakdowns read the new numbers")
    func rebuildDropsSpans() async throws {
        let site = try await f.addSite()
        try await storeHydrated(site: site)
        for item in StatsEvents.items(site: site) { try await f.handler.handle([item]) }
        let later = ISO8601.parse("2030-01-20T12:00:00Z")!
        let built = try await SpanBuilder(postgres: f.db, catalog: f.catalog, limit: 100).pass(now: later, sites: [site])
        #expect(built.spans == 6, "2030-01-10 to 01-17 (New York; closed to 01-18): four spans of 2 days, two of 4")
        try await admin.query("""
            UPDATE hydration.events SET enrichment = jsonb_set(enrichment, '{country}', '"CA"')
            WHERE site_id = $1 AND visitor_hash = 'A'
            """, [site])
        _ = try await rebuild(site)
        let left = try await f.db.query("""
            SELECT first_day::text || '+' || days AS s FROM aggregator.span_index WHERE site_id = $1 ORDER BY 1
            """, [site]).rows.map { try $0.string("s") ?? "" }
        #expect(left == ["2030-01-14+2", "2030-01-14+4", "2030-01-16+2"], "the spans over 2030-01-08 to 01-12 are gone")
        var engine = StatsEngine(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime, configuration: f.configuration)
        engine.now = { later }
        let body = try JSONValue.parse(Array(#"""
            {"site_id":"\#(site)","metrics":["visitors"],"date_range":["2030-01-09","2030-01-17"],"dimensions":["visit:country"]}
            """#.utf8))
        #expect(try await engine.query(body, caller: .admin)["results"]?.jsonText
                == #"[{"dimensions":["CA"],"metrics":[1]},{"dimensions":["DE"],"metrics":[1]},{"dimensions":["FR"],"metrics":[1]}]"#)
    }

    @Test("a day whose visits may still be open is refused")
    func openDay() async throws {
        let site = try await f.addSite()
        await #expect(throws: DaemonError.self) {
            _ = try await rebuilder(site).rebuild(day: LocalClock.day(fromText: "2030-01-12")!, dryRun: false,
                                                  now: ISO8601.parse("2030-01-13T05:10:00Z")!)
        }
    }
}

@Suite("Aggregator: cleanup of interactions, visits and memberships")
struct AggregatorJanitorTests {
    /// The cleanup is for all sites: its dates are a year before the other suites' so that
    /// it deletes nothing of theirs while they run.
    @Test("rows older than the late-event window (+2 days) are deleted, newer ones kept, in chunks")
    func cleanup() async throws {
        let f = try await AggregatorFixture()
        let site = try await f.addSite(zone: "UTC")
        typealias F = AggregatorFixture
        var old = f.handler
        old.now = { ISO8601.parse("2029-01-01T12:00:00Z")! }
        try await old.handle([F.item(site: site, batch: 1, (1...5).map {
            F.event(Int64($0), "page", at: "2029-01-01T10:0\($0):00.000Z", visitor: "v\($0)", path: "/")
        })])
        try await old.handle([F.item(site: site, batch: 2, [F.event(9, "page", at: "2029-01-20T10:00:00.000Z", visitor: "n", path: "/")])])
        func count(_ table: String) async throws -> Int64 {
            try await f.db.query("SELECT count(*) AS n FROM aggregator.\(table) WHERE site_id = $1", [site]).first?.int("n") ?? -1
        }
        let before = try await count("visitor_days")
        var janitor = AggregatorJanitor(postgres: f.db, configuration: f.configuration, logger: f.handler.logger)
        janitor.chunk = 2
        _ = try await janitor.clean(now: ISO8601.parse("2029-01-20T12:00:00Z")!)
        #expect(try await count("visitor_events") == 1)
        #expect(try await count("visits") == 1)
        let after = try await count("visitor_days")
        #expect(after < before && after > 0)
        #expect(try await f.daily(site, "2029-01-01") == [5, 0, 5, 5, 5, 5, 0, 5], "the rollups keep their counts")
    }
}
