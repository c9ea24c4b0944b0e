import Foundation
import Logging
import Testing
import TributaryHTTP
import TributaryModels
import TributaryTesting
@testable import Aggregator

/// A Stats API server running in this process on a free port.
final class StatsServerHandle: Sendable {
    let task: Task<Void, any Error>
    let port: Int
    let http: HTTPClient

    init(engine: StatsEngine, pool: TestThreadPool) async throws {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = StatsServer(host: "127.0.0.1", port: 0, engine: engine, logger: Logger(label: "test"),
                                 onServerRunning: { continuation.yield($0) })
        task = Task { try await server.run() }
        var iterator = stream.makeAsyncIterator()
        port = await iterator.next() ?? 0
        http = HTTPClient(threadPool: pool.pool)
    }

    func stop() {
        task.cancel()
        http.close()
    }

    func post(_ body: String, token: String? = AggregatorFixture.adminToken) async throws -> (Int, JSONValue?) {
        var headers = [(name: "Content-Type", value: "application/json")]
        if let token { headers.append((name: "Authorization", value: "Bearer " + token)) }
        let response = try await http.send(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(port)/api/v2/query",
                                                             headers: headers, body: Array(body.utf8)))
        return (response.status, try? JSONValue.parse(response.body))
    }

    func get(_ path: String, token: String? = AggregatorFixture.adminToken) async throws -> (Int, String) {
        var headers: [(name: String, value: String)] = []
        if let token { headers.append((name: "Authorization", value: "Bearer " + token)) }
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)" + path, headers: headers))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }
}

@Suite("Aggregator: the Plausible-shaped Stats API", .serialized)
struct AggregatorAPITests {
    let f: AggregatorFixture
    let now = ISO8601.parse("2030-01-11T12:00:00Z")!

    init() async throws {
        f = try await AggregatorFixture()
    }

    func engine(now: Date) -> StatsEngine {
        var engine = StatsEngine(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime, configuration: f.configuration)
        engine.now = { now }
        return engine
    }

    /// The `results` of a 200 answer as [[metrics], [dimensions]] in text, for short comparisons.
    func rows(_ answer: (Int, JSONValue?)) -> [String] {
        guard answer.0 == 200, case .array(let results)? = answer.1?["results"] else {
            return ["HTTP \(answer.0) \(answer.1?.jsonText ?? "")"]
        }
        func items(_ value: JSONValue?) -> [JSONValue] {
            if case .array(let a)? = value { return a }
            return []
        }
        return results.map { (r: JSONValue) -> String in
            let dims = items(r["dimensions"]).map { $0.stringValue ?? $0.jsonText }
            let metrics = items(r["metrics"]).map(\.jsonText)
            return (dims + metrics).joined(separator: " ")
        }
    }

    @Test("totals, time series, breakdowns and filters answer the hand-computed numbers")
    func answers() async throws {
        let site = try await f.addSite()
        for item in StatsEvents.items(site: site) { try await f.handler.handle([item]) }
        let server = try await StatsServerHandle(engine: engine(now: now), pool: f.pool)
        defer { server.stop() }
        let all = #""metrics":["visitors","visits","pageviews","views_per_visit","bounce_rate","visit_duration","events"]"#
        #expect(rows(try await server.post(#"{"site_id":"\#(site)",\#(all),"date_range":["2030-01-09","2030-01-10"]}"#))
                == ["3 4 5 1.25 75 375 6"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)",\#(all),"date_range":"7d"}"#)) == ["3 4 5 1.25 75 375 6"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors","pageviews"],"date_range":"7d","dimensions":["time:day"]}"#))
                == ["2030-01-09 1 1", "2030-01-10 3 4"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors","visits"],"date_range":["2030-01-10","2030-01-10"],"dimensions":["time:hour"]}"#))
                == ["2030-01-10 00:00:00 1 0", "2030-01-10 09:00:00 2 2", "2030-01-10 10:00:00 1 1"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors","pageviews"],"date_range":"7d","dimensions":["event:page"]}"#))
                == ["/home 3 3", "/blog 1 1", "/pricing 1 1"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visits","bounce_rate"],"date_range":"7d","dimensions":["visit:source"],"order_by":[["visits","asc"]]}"#))
                == ["Google 1 0", "Direct / None 3 100"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visits"],"date_range":"7d","dimensions":["visit:exit_page"]}"#))
                == ["/home 2", "/blog 1", "/pricing 1"], "an exit page a visit moved on from is not listed")
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors","visits"],"date_range":"7d","filters":[["is","visit:country",["US"]]]}"#))
                == ["1 1"], "A is one visitor across the two days")
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors","events"],"date_range":"7d","dimensions":["event:props:plan"]}"#))
                == ["pro 1 1"])
        #expect(rows(try await server.post(#"{"site_id":"\#(site)","metrics":["visitors"],"date_range":"7d","dimensions":["visit:country"],"filters":[["contains","visit:country",["D","F"]]],"pagination":{"limit":1,"offset":1}}"#))
                == ["FR 1"])
        let answer = try await server.post(#"{"site_id":"\#(site)","metrics":["visitors"],"date_range":"day"}"#)
        #expect(answer.1?["query"]?["date_range"]?.jsonText == #"["2030-01-11T00:00:00-05:00","2030-01-11T23:59:59-05:00"]"#)
        #expect(answer.1?["meta"] != nil)
    }

    @Test("a query the rollups cannot answer exactly gets a 400 that names what is not supported")
    func unsupported() async throws {
        let site = try await f.addSite()
        let server = try await StatsServerHandle(engine: engine(now: now), pool: f.pool)
        defer { server.stop() }
        let cases: [(String, String)] = [
            (#""metrics":["events"],"date_range":"7d","dimensions":["visit:source"]"#, "metric events is not supported with visit:source"),
            (#""metrics":["visits"],"date_range":"7d","dimensions":["event:name"]"#, "metric visits is not supported with event:name"),
            (#""metrics":["visitors"],"date_range":"7d","filters":[["is","visit:country",["US","DE"]]]"#, "filter that matches several values"),
            (#""metrics":["visitors"],"date_range":"7d","dimensions":["time:week"]"#, "dimension time:week is not supported"),
            (#""metrics":["conversion_rate"],"date_range":"7d""#, "metric conversion_rate is not supported"),
            (#""metrics":["visitors"],"date_range":"7d","dimensions":["event:props:color"]"#, "--stats-prop color"),
            (#""metrics":["visitors"],"date_range":"7d","dimensions":["event:page"],"filters":[["is","visit:country",["US"]]]"#, "filter on visit:country is not supported"),
            (#""metrics":["visitors"],"date_range":"fortnight""#, "date_range fortnight is not supported"),
            (#""metrics":["visitors"],"date_range":["2030-02-30","2030-03-01"]"#, "YYYY-MM-DD"),
            (#""metrics":["visitors"],"date_range":"7d","filters":[["and",[]]]"#, "filter is [operator, dimension, [values]]"),
            (#""metrics":[],"date_range":"7d""#, "metrics is required"),
        ]
        for (body, message) in cases {
            let (status, answer) = try await server.post(#"{"site_id":"\#(site)",\#(body)}"#)
            #expect(status == 400, "\(body)")
            let error = answer?["error"]?.stringValue ?? ""
            #expect(error.contains(message), "\(body): \(error)")
        }
        #expect(try await server.post("{").0 == 400)
    }

    @Test("a read key opens its own site, the admin token every site, nothing else opens any")
    func authorization() async throws {
        let site = try await f.addSite()
        let server = try await StatsServerHandle(engine: engine(now: now), pool: f.pool)
        defer { server.stop() }
        let body = #"{"site_id":"\#(site)","metrics":["visitors"],"date_range":"day"}"#
        let key = AggregatorFixture.readKey(site)
        #expect(try await server.post(body, token: key).0 == 200)
        let other = try await f.addSite()
        #expect(try await server.post(body, token: AggregatorFixture.readKey(other)).0 == 401, "another site's key")
        #expect(try await server.post(body, token: nil).0 == 401)
        #expect(try await server.post(body, token: "trr_wrong").0 == 401)
        #expect(try await server.post(body, token: f.configuration.adminToken).0 == 200)
        let name = try #require(f.catalog.site(site)?.name)
        #expect(try await server.post(#"{"site_id":"\#(name)","metrics":["visitors"],"date_range":"day"}"#, token: key).0 == 200,
                "site_id may be the site's name")
        #expect(try await server.post(#"{"site_id":"no-such-site","metrics":["visitors"],"date_range":"day"}"#,
                                      token: f.configuration.adminToken).0 == 404)
        let page = try await server.get("/", token: nil)
        #expect(page.0 == 200 && page.1.contains("<title>Tributary statistics</title>") && !page.1.contains("https://"))
    }

    @Test("current visitors are the distinct visitors of the last five minutes, as a bare number")
    func realtime() async throws {
        let site = try await f.addSite(zone: "UTC")
        let t = ISO8601.parse("2030-01-10T12:00:00Z")!
        var handler = f.handler
        handler.now = { t.addingTimeInterval(60) }
        typealias F = AggregatorFixture
        try await handler.handle([F.item(site: site, batch: 1, [
            F.event(1, "page", at: "2030-01-10T11:50:00.000Z", visitor: "gone", path: "/"),
            F.event(2, "page", at: "2030-01-10T11:58:00.000Z", visitor: "v1", path: "/"),
            F.event(3, "page", at: "2030-01-10T11:59:00.000Z", visitor: "v1", path: "/x"),
            F.event(4, "page", at: "2030-01-10T12:00:00.000Z", visitor: "v2", path: "/"),
        ])])
        let server = try await StatsServerHandle(engine: engine(now: t.addingTimeInterval(60)), pool: f.pool)
        defer { server.stop() }
        #expect(try await server.get("/api/v1/stats/realtime/visitors?site_id=\(site)", token: AggregatorFixture.readKey(site))
                == (200, "2"))
        #expect(try await server.get("/api/v1/stats/realtime/visitors?site_id=\(site)", token: nil).0 == 401)
        #expect(try await server.get("/api/v1/stats/realtime/visitors").0 == 400)
    }
}
