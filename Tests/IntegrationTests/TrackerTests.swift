import Foundation
import Testing
import TributaryHTTP
import TributaryPostgres
import TributaryTesting

/// The browser tracker in a real headless Chromium, against a real collector and
/// hydration: what a page creates is stored by hydration exactly once (hydration
/// deduplicates by messageId, which the tracker sets when it creates an event).
@Suite("Browser tracker in a real Chromium", .serialized)
struct TrackerTests {
    let env: TestEnvironment

    init() throws {
        env = try TestEnvironment.current()
    }

    /// A collector (own Redis database 20) and a hydration behind it, one site, a browser.
    final class Fixture: @unchecked Sendable {
        let collector: CollectorProcess
        let browser: Browser
        let env: TestEnvironment
        var hydration: ChildProcess?
        var site: (id: Int64, key: String) = (0, "")

        init(env: TestEnvironment, collectorEnvironment: [String: String] = [:]) async throws {
            self.env = env
            collector = CollectorProcess(env: env, redisDatabase: 20, environment: collectorEnvironment)
            browser = try await Browser(env: env, name: "browser")
            try await collector.start()
            site = try await collector.addSite()
            _ = try await collector.command(["sites", "update", String(site.id), "--allowed-origin", browser.pagesOrigin])
            var e = ProcessInfo.processInfo.environment
            e["TRIBUTARY_CONFIG"] = nil
            e["TRIBUTARY_POSTGRES_PORT"] = String(env.pgPort)
            e["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(env.redisPort)/20"
            e["TRIBUTARY_HYDRATION_ADMIN_PORT"] = String(freeLoopbackPort())
            e["TRIBUTARY_HYDRATION_GEOIP_DATABASE"] = env.geoDatabase
            e["TRIBUTARY_QUEUE_IDLE_WAIT_SECONDS"] = "0.2"
            hydration = try ChildProcess(env.binDirectory + "/hydration", ["run"], environment: e,
                                         stderrPath: collector.spoolDirectory + "-hydration.log")
            try await Task.sleep(for: .seconds(1))
        }

        func stop() async {
            hydration?.send(SIGTERM)
            await hydration?.wait()
            await collector.stop()
        }

        /// A page with the pre-load stub, `head` before the tag, and the tracker's tag.
        func page(_ path: String, head: String = "", attributes: String = "") async throws -> String {
            try await browser.serve(path.split(separator: "?").first.map(String.init) ?? path, html: """
                <!doctype html><html><head><title>Page \(path)</title>
                <script>window.tributary=window.tributary||[];["track","identify","page"].forEach(function(m){tributary[m]=tributary[m]||function(){tributary.push([m].concat([].slice.call(arguments)))}});</script>
                \(head)
                <script defer src="\(collector.baseURL)/tributary.js" data-write-key="\(site.key)" \(attributes)></script>
                </head><body><p>test page</p></body></html>
                """) + (path.contains("?") ? "?" + path.split(separator: "?", maxSplits: 1)[1] : "")
        }

        /// The site's stored events in the order the page created them (by their time: two workers may
        /// store two batches of one site in either order).
        func events() async throws -> [Stored] {
            try await collector.db.query("""
                SELECT type, name, user_id, anonymous_id, context->'page'->>'path' AS path, context->'page'->>'referrer' AS referrer,
                       (properties->>'n')::bigint AS n, enrichment->>'utmSource' AS utm, traits::text AS traits
                FROM hydration.events WHERE site_id = $1 ORDER BY event_time, event_id
                """, [site.id]).rows.map { row in
                Stored(type: try row.string("type") ?? "", name: try row.string("name"), userID: try row.string("user_id"),
                       anonymousID: try row.string("anonymous_id"), path: try row.string("path"),
                       referrer: try row.string("referrer"), n: try row.int("n"), utm: try row.string("utm"),
                       traits: try row.string("traits"))
            }
        }

        /// Waits until the stored events satisfy `condition`; returns the last read.
        func waitForEvents(timeout: Duration = .seconds(60), _ condition: @escaping ([Stored]) -> Bool) async -> [Stored] {
            var last: [Stored] = []
            _ = await eventually(timeout: timeout) {
                last = (try? await self.events()) ?? last
                return condition(last)
            }
            return last
        }
    }

    struct Stored: Sendable {
        var type: String
        var name: String?
        var userID: String?
        var anonymousID: String?
        var path: String?
        var referrer: String?
        var n: Int64?
        var utm: String?
        var traits: String?
    }

    @Test("page views on load and on SPA navigation, track and identify, and the calls queued before the script loaded")
    func pageViewsTrackIdentify() async throws {
        let f = try await Fixture(env: env)
        let url = try await f.page("/app.html?utm_source=news", head: #"<script>tributary.track("Early", {n: 0});</script>"#)
        try await f.browser.open(url)
        try await f.browser.eval("""
            history.pushState({}, "", "/app/second");
            history.replaceState({}, "", "/app/third");
            history.pushState({}, "", "/app/third#section");
            tributary.track("Clicked", {n: 1});
            tributary.identify("user-7", {plan: "pro"});
            tributary.track("After", {n: 2});
            new Promise(function (done) { window.addEventListener("popstate", function () { setTimeout(done, 50); }); history.go(-2); })
            """)
        let events = await f.waitForEvents { $0.count >= 8 }
        await f.stop()
        let pages = events.filter { $0.type == "page" }
        // The hash change is not a page view (hash routing is off); history.go(-2) is one.
        #expect(pages.map(\.path) == ["/app.html", "/app/second", "/app/third", "/app.html"], "\(events)")
        #expect(pages.first?.utm == "news")
        #expect(pages.dropFirst().first?.referrer?.hasSuffix("/app.html?utm_source=news") == true)
        #expect(events.first { $0.name == "Early" }?.n == 0, "the call made before the script loaded was not replayed")
        let identify = events.first { $0.type == "identify" }
        #expect(identify?.userID == "user-7" && identify?.traits?.contains("\"plan\": \"pro\"") == true)
        #expect(events.first { $0.name == "After" }?.userID == "user-7")
        #expect(events.first { $0.name == "Clicked" }?.userID == nil)
        #expect(Set(events.compactMap(\.anonymousID)).count == 1, "one page, one anonymous id")
        #expect(events.count == 8, "\(events.map { ($0.type, $0.name ?? $0.path ?? "") })")
    }

    @Test("events queued when the page is hidden or left go out in a beacon")
    func beaconOnPageHide() async throws {
        let f = try await Fixture(env: env)
        try await f.browser.open(try await f.page("/leave.html"))
        _ = await f.waitForEvents { $0.count == 1 }
        // Count the beacons (in localStorage, which outlives the page), then leave within the
        // same task: the 500 ms flush timer cannot fire first, only the beacon can carry "Bye".
        try await f.browser.eval("""
            var send = navigator.sendBeacon.bind(navigator);
            navigator.sendBeacon = function (url, data) {
                localStorage.setItem("beacons", String(Number(localStorage.getItem("beacons") || 0) + 1));
                return send(url, data);
            };
            tributary.track("Bye", {n: 1}); location.href = "about:blank"; true
            """)
        let events = await f.waitForEvents { $0.contains { $0.name == "Bye" } }
        try await f.browser.open(try await f.browser.serve("/check.html", html: "<title>check</title>"))
        let beacons = try await f.browser.eval(#"Number(localStorage.getItem("beacons") || 0)"#) as? Int
        await f.stop()
        #expect(events.filter { $0.name == "Bye" }.count == 1)
        #expect((beacons ?? 0) >= 1, "no beacon was sent")
    }

    @Test("the collector down for 30 s while the page keeps tracking: every event arrives exactly once")
    func collectorOutage() async throws {
        let f = try await Fixture(env: env)
        try await f.browser.open(try await f.page("/outage.html"))
        _ = await f.waitForEvents { $0.count == 1 }
        try await f.browser.eval(#"window.n = 0; window.ticker = setInterval(function () { tributary.track("Tick", {n: ++n}); }, 250); true"#)
        try await Task.sleep(for: .seconds(2))
        await f.collector.stop()
        try await Task.sleep(for: .seconds(30))
        try await f.collector.start()
        try await Task.sleep(for: .seconds(2))
        let sent = try #require(try await f.browser.eval("clearInterval(window.ticker); n") as? Int)
        let events = await f.waitForEvents(timeout: .seconds(90)) { events in
            Set(events.filter { $0.name == "Tick" }.compactMap(\.n)).count >= sent
        }
        let failed = try await f.browser.requests().filter {
            ($0["url"] as? String)?.hasSuffix("/v1/batch") == true && ($0["status"] as? Int) == 0
        }
        await f.stop()
        let ticks = events.filter { $0.name == "Tick" }.compactMap(\.n)
        #expect(sent > 100)
        #expect(ticks.sorted() == Array(1...Int64(sent)), "\(ticks.count) stored of \(sent) created")
        #expect(!failed.isEmpty, "the page never saw the collector down")
    }

    @Test("events unsent when the page reloads are kept in localStorage and sent by the next page")
    func reloadWithStoredEvents() async throws {
        let f = try await Fixture(env: env)
        let url = try await f.page("/reload.html")
        try await f.browser.open(url)
        _ = await f.waitForEvents { $0.count == 1 }
        await f.collector.stop()
        try await f.browser.eval(#"for (var i = 1; i <= 5; i++) tributary.track("Stored", {n: i}); true"#)
        try await Task.sleep(for: .seconds(2))
        let stored = try await f.browser.eval("""
            Object.keys(localStorage).filter(function (k) { return k.indexOf(":q:") > 0; })
                .reduce(function (n, k) { return n + JSON.parse(localStorage.getItem(k)).length; }, 0)
            """) as? Int
        #expect(stored == 5, "the unsent events are not in localStorage")
        // The site's page again while the collector is still down: the script comes from the browser's cache.
        try await f.browser.open(url + "?again=1")
        try await Task.sleep(for: .seconds(1))
        try await f.collector.start()
        let events = await f.waitForEvents(timeout: .seconds(60)) { events in
            events.filter { $0.name == "Stored" }.count >= 5 && events.filter { $0.type == "page" }.count >= 2
        }
        try await Task.sleep(for: .seconds(2))
        let again = try await f.events()
        await f.stop()
        #expect(events.filter { $0.name == "Stored" }.compactMap(\.n).sorted() == [1, 2, 3, 4, 5])
        #expect(again.filter { $0.name == "Stored" }.count == 5, "an event was stored twice")
    }

    @Test("a 429 is honoured: the next try waits for its Retry-After")
    func rateLimitHonoured() async throws {
        let f = try await Fixture(env: env, collectorEnvironment: ["TRIBUTARY_COLLECTOR_RATE_LIMIT_BURST": "1"])
        try await f.collector.db.query("UPDATE collector.sites SET rate_limit_per_second = 0.25, updated_at = now() WHERE site_id = $1",
                                       [f.site.id])
        try await Task.sleep(for: .seconds(1))
        try await f.browser.open(try await f.page("/limited.html"))
        try await f.browser.eval(#"setTimeout(function () { tributary.track("Limited", {n: 1}); }, 1000); true"#)
        let events = await f.waitForEvents(timeout: .seconds(60)) { $0.contains { $0.name == "Limited" } }
        let batches = try await f.browser.requests().filter { ($0["url"] as? String)?.hasSuffix("/v1/batch") == true }
        await f.stop()
        #expect(events.filter { $0.name == "Limited" }.count == 1)
        let limited = try #require(batches.firstIndex { ($0["status"] as? Int) == 429 }, "no request was rate limited: \(batches)")
        let retryAfter = try #require((batches[limited]["retryAfter"] as? String).flatMap(Double.init))
        let answered = try #require(batches[limited]["doneTime"] as? Double)
        let next = try #require(batches.dropFirst(limited + 1).first)
        let waited = (next["time"] as? Double ?? 0) - answered
        #expect(waited >= retryAfter - 0.25, "retried after \(waited) s; Retry-After was \(retryAfter) s")
    }

    @Test("a page on an origin the site does not allow is refused, and nothing is stored")
    func disallowedOrigin() async throws {
        let f = try await Fixture(env: env)
        _ = try await f.collector.command(["sites", "update", String(f.site.id), "--allowed-origin", "https://shop.example"])
        try await Task.sleep(for: .seconds(1))
        try await f.browser.open(try await f.page("/refused.html"))
        try await f.browser.eval(#"tributary.track("Refused", {n: 1}); true"#)
        let status = try await f.browser.eval("""
            fetch("\(f.collector.baseURL)/v1/batch", {method: "POST", headers: {"Content-Type": "text/plain"},
                body: JSON.stringify({writeKey: "\(f.site.key)", batch: [{type: "track", event: "Direct", anonymousId: "a"}]})})
                .then(function (r) { return r.status; })
            """) as? Int
        try await Task.sleep(for: .seconds(2))
        let settings = try await f.browser.requests().filter { ($0["url"] as? String)?.contains("/v1/settings") == true }
        let raw = try await f.collector.rawBatches(site: f.site.id)
        await f.stop()
        #expect(status == 403)
        #expect(settings.first?["status"] as? Int == 403, "\(settings)")
        #expect(raw.isEmpty, "a refused origin's events were saved")
    }

    @Test("cookie-less by default, an id kept across pages when the site allows it, nothing sent under GPC when the site honours it")
    func privacySettings() async throws {
        // Settings not cached by the browser's HTTP cache, so each page reads the site's latest.
        let f = try await Fixture(env: env, collectorEnvironment: ["TRIBUTARY_COLLECTOR_TRACKER_SETTINGS_CACHE_SECONDS": "0"])
        let url = try await f.page("/privacy.html")
        try await f.browser.open(url)
        try await f.browser.open(url + "?second=1")
        let cookieLess = await f.waitForEvents { $0.count == 2 }
        #expect(Set(cookieLess.compactMap(\.anonymousID)).count == 2, "cookie-less pages must not share an id")
        #expect(try await f.browser.eval("Object.keys(localStorage).filter(function (k) { return /:id$/.test(k); }).length") as? Int == 0)

        _ = try await f.collector.command(["sites", "update", String(f.site.id), "--tracker-cookies", "true"])
        try await Task.sleep(for: .seconds(1))
        // The first page after the change starts from the cached settings and keeps its id once
        // the fresh ones arrive; the next page finds it.
        try await f.browser.open(url + "?cookies=1")
        _ = await f.waitForEvents { $0.count == 3 }
        try await f.browser.open(url + "?cookies=2")
        let withCookies = await f.waitForEvents { $0.count == 4 }.suffix(2)
        #expect(Set(withCookies.compactMap(\.anonymousID)).count == 1, "with cookies allowed, pages must share the id")

        _ = try await f.collector.command(["sites", "update", String(f.site.id), "--honor-dnt", "true"])
        try await Task.sleep(for: .seconds(1))
        try await f.browser.addInitScript(#"Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {get: function () { return true; }});"#)
        let before = try await f.events().count
        let gpcURL = try await f.page("/gpc.html?fresh=1")
        try await f.browser.open(gpcURL)
        try await f.browser.eval(#"tributary.track("Private", {n: 1}); new Promise(function (r) { setTimeout(r, 2500); })"#)
        let stored = try await f.browser.eval(#"Object.keys(localStorage).filter(function (k) { return k.indexOf("tributary:") === 0 && !/:cfg$/.test(k); }).length"#) as? Int
        try await Task.sleep(for: .seconds(2))
        let after = try await f.events()
        await f.stop()
        #expect(after.count == before, "a visitor with Global Privacy Control was tracked: \(after.suffix(2))")
        #expect(stored == 0, "the tracker kept data for a visitor with Global Privacy Control")
    }

}
