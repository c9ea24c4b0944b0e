import Foundation
import Logging
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Aggregator

/// Spans (sums of daily rows over closed days) must never change an answer: every
/// breakdown reads the same numbers from spans as from daily rows, and whatever changes a
/// day (a late event, a rebuild) deletes the spans over it in the same transaction.
@Suite("Aggregator: spans answer exactly what daily rows answer", .serialized)
struct AggregatorSpanTests {
    typealias F = AggregatorFixture
    let f: AggregatorFixture
    /// The handler's and the engine's clock: 2030-02-20, noon UTC.
    let now = ISO8601.parse("2030-02-20T12:00:00Z")!
    let handler: AggregatorHandler

    init() async throws {
        f = try await AggregatorFixture(breakdownLimit: 3)
        var configuration = f.configuration
        configuration.lateEventDays = 60
        var handler = AggregatorHandler(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime,
                                        configuration: configuration, logger: Logger(label: "test"))
        handler.now = { [now] in now }
        self.handler = handler
    }

    /// 40 days of visits in New York time, one batch a day: the hash changes at UTC
    /// midnight (19:00 local), so visitors span local days and are carried; five pages and
    /// five sources over a breakdown limit of 3, so "(other)" rows appear.
    static func history(site: Int64) -> [QueueItem] {
        let pages = ["/", "/a", "/b", "/c", "/d"], sources = ["Google", "Bing", "Reddit", "HN", "X"]
        let countries = ["US", "DE", "FR", "JP"]
        var items: [QueueItem] = []
        var id: Int64 = 0
        for day in 0..<40 {
            var events: [JSONValue] = []
            for v in 0..<(3 + day % 4) {
                for (n, minutes) in [60, 70, 600, 1_400].prefix(1 + (day + v) % 4).enumerated() {
                    id += 1
                    let seconds: Int = day * 86_400 + minutes * 60 + v * 97 + n
                    let at = Date(timeIntervalSince1970: 1_893_456_000 + Double(seconds))
                    let k = (day * 7 + v * 3 + n) % 5
                    if (v + n) % 3 == 2 {
                        events.append(F.event(id, "track", at: ISO8601.format(at), visitor: "d\(day)v\(v)", path: pages[k],
                                              name: k % 2 == 0 ? "Signup" : "Click", source: sources[(day + v) % 5],
                                              country: countries[v % 4], props: ["plan": .string(k % 2 == 0 ? "pro" : "free")]))
                    } else {
                        events.append(F.event(id, "page", at: ISO8601.format(at), visitor: "d\(day)v\(v)", path: pages[k],
                                              source: v % 2 == 0 ? sources[(day + v) % 5] : nil, country: countries[v % 4],
                                              utm: v == 1 ? "news" : nil))
                    }
                }
            }
            items.append(F.item(site: site, batch: Int64(day + 1), events))
        }
        return items
    }

    static let queries: [String] = {
        let ranges = [#""30d""#, #"["2030-01-01","2030-02-19"]"#, #"["2030-01-05","2030-02-03"]"#, #"["2030-01-14","2030-01-17"]"#,
                      #"["2030-01-16","2030-01-16"]"#]
        let bodies = [
            #""metrics":["visitors","pageviews"],"dimensions":["event:page"]"#,
            #""metrics":["visitors","visits","bounce_rate","visit_duration","views_per_visit","pageviews"],"dimensions":["visit:entry_page"]"#,
            #""metrics":["visitors","visits"],"dimensions":["visit:exit_page"]"#,
            #""metrics":["visitors","visits","pageviews"],"dimensions":["visit:source"],"order_by":[["visits","asc"]]"#,
            #""metrics":["visitors"],"dimensions":["visit:country"],"filters":[["is_not","visit:country",["JP"]]]"#,
            #""metrics":["visitors","events"],"dimensions":["event:name"]"#,
            #""metrics":["visitors","events"],"dimensions":["event:props:plan"]"#,
            #""metrics":["visitors","pageviews"],"dimensions":["event:page"],"filters":[["contains","event:page",["/a","/c"]]],"pagination":{"limit":1,"offset":1}"#,
            #""metrics":["visitors"],"dimensions":["visit:utm_source"]"#,
            #""metrics":["visitors","visits","pageviews","bounce_rate","visit_duration","events"]"#,
            #""metrics":["visitors","visits"],"filters":[["is","visit:source",["Google"]]]"#,
            #""metrics":["visits","pageviews"],"filters":[["is","visit:source",["Google","Bing"]]]"#,
            #""metrics":["pageviews"],"filters":[["is_not","event:page",["/"]]]"#,
        ]
        return ranges.flatMap { range in bodies.map { #"{"date_range":\#(range),\#($0)}"# } }
    }()

    /// A new site with `history` aggregated.
    func siteWithHistory() async throws -> Int64 {
        let site = try await f.addSite()
        for item in Self.history(site: site) { try await handler.handle([item]) }
        return site
    }

    func answers(_ site: Int64) async throws -> [String] {
        var engine = StatsEngine(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime, configuration: f.configuration)
        engine.now = { [now] in now }
        var out: [String] = []
        for text in Self.queries {
            var body = try JSONValue.parse(Array(text.utf8))
            if case .object(var o) = body { o["site_id"] = .string(String(site)); body = .object(o) }
            out.append(text + " → " + ((try await engine.query(body, caller: .admin))["results"]?.jsonText ?? "none"))
        }
        return out
    }

    func spans(_ site: Int64) async throws -> [String] {
        try await f.db.query("""
            SELECT first_day::text || '+' || days AS s FROM aggregator.span_index WHERE site_id = $1 ORDER BY first_day, days
            """, [site]).rows.map { try $0.string("s") ?? "" }
    }

    func dropSpans(_ site: Int64) async throws {
        try await f.db.query("DELETE FROM aggregator.spans WHERE site_id = $1", [site])
        try await f.db.query("DELETE FROM aggregator.span_index WHERE site_id = $1", [site])
    }

    func build(_ site: Int64) async throws -> SpanBuilder.Report {
        try await SpanBuilder(postgres: f.db, catalog: f.catalog, limit: 1000).pass(now: now, sites: [site])
    }

    @Test("every breakdown, range, filter and page reads the same numbers from spans as from daily rows")
    func sameAnswers() async throws {
        let site = try await siteWithHistory()
        let carried = try await f.db.query("SELECT sum(visitors_carried) AS c FROM aggregator.daily WHERE site_id = $1 AND dim <> ''",
                                           [site]).first?.int("c") ?? 0
        #expect(carried > 10, "the history carries visitors from day to day")
        let others = try await f.db.query("SELECT count(*) AS n FROM aggregator.daily WHERE site_id = $1 AND value = '(other)'",
                                          [site]).first?.int("n") ?? 0
        #expect(others > 10, "the history folds values into (other)")
        let daily = try await answers(site)
        let report = try await build(site)
        // From the first local day, 2029-12-31 (day 21914), to 2030-02-18 (today − 2 in New York):
        // 25 spans of 2 days, 12 of 4, 5 of 8, 2 of 16 and one of 32 (none of 64 fits).
        #expect(report.spans == 25 + 12 + 5 + 2 + 1 && report.remaining == 0)
        #expect(try await build(site).spans == 0, "a second pass finds nothing missing")
        let raced = try await f.db.withTransaction { tx in
            try await AggregatorStore.lockSite(tx, site: site)
            return try await Spans.build(tx, site: site, Spans.Span(first: 21914, days: 2))
        }
        #expect(raced == nil, "a span another janitor built meanwhile is left as it is")
        let listed = try await spans(site)
        #expect(listed.contains("2030-01-06+32") && listed.contains("2030-01-22+16") && listed.last == "2030-02-17+2")
        let fromSpans = try await answers(site)
        for (a, b) in zip(daily, fromSpans) { #expect(a == b) }
    }

    @Test("a late event deletes the spans over its day in its own transaction; the answers stay exact")
    func lateEvent() async throws {
        let site = try await siteWithHistory()
        _ = try await build(site)
        let before = try await spans(site)
        let answered = try await answers(site)
        // 2030-01-20 in New York (day 21934) is in five spans, one of each length up to 32.
        try await handler.handle([F.item(site: site, batch: 1_000, [
            F.event(90_001, "page", at: "2030-01-20T15:00:00.000Z", visitor: "late", path: "/late", source: "Late",
                    country: "US"),
        ])])
        let after = try await spans(site)
        #expect(Set(before).subtracting(after) == ["2030-01-20+2", "2030-01-18+4", "2030-01-14+8", "2030-01-06+16",
                                                   "2030-01-06+32"])
        #expect(Set(after).isSubset(of: before))
        let withSpans = try await answers(site)
        #expect(withSpans != answered, "the late page view counts")
        #expect(try await build(site).spans == 5, "the next pass builds the five again")
        #expect(try await answers(site) == withSpans)
        try await dropSpans(site)
        #expect(try await answers(site) == withSpans)
    }

    @Test("two janitors building at once build each span once, without an error")
    func twoBuilders() async throws {
        let site = try await siteWithHistory()
        async let a = build(site)
        async let b = build(site)
        let (ra, rb) = try await (a, b)
        #expect(ra.spans + rb.spans == 45)
        #expect(try await spans(site).count == 45)
    }

    @Test("a turn of today's events leaves the spans alone")
    func currentDay() async throws {
        let site = try await siteWithHistory()
        _ = try await build(site)
        let before = try await spans(site)
        try await handler.handle([F.item(site: site, batch: 1_001, [
            F.event(90_002, "page", at: "2030-02-20T11:00:00.000Z", visitor: "now", path: "/", country: "US"),
        ])])
        #expect(try await spans(site) == before)
    }
}
