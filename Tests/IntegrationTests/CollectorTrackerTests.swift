import Foundation
import Testing
import TributaryHTTP
import TributaryTesting

@Suite("Collector: the tracker script and its settings", .serialized)
struct CollectorTrackerTests {
    let env: TestEnvironment

    init() throws {
        env = try TestEnvironment.current()
    }

    @Test("the script is under 3 KB gzipped, cached with an ETag, and 304 when unchanged")
    func script() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 21)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let gzipped = try await collector.send("/tributary.js", method: "GET", headers: [("Accept-Encoding", "gzip, br")])
        #expect(gzipped.status == 200)
        #expect(gzipped.header("Content-Encoding") == "gzip")
        #expect(gzipped.body.count < 3 * 1024, "the tracker is \(gzipped.body.count) bytes gzipped")
        #expect(gzipped.header("Cache-Control") == "public, max-age=86400")
        #expect(gzipped.header("Content-Type")?.hasPrefix("text/javascript") == true)
        let etag = try #require(gzipped.header("ETag"))
        let plain = try await collector.send("/tributary.js", method: "GET", headers: [])
        let text = String(decoding: plain.body, as: UTF8.self)
        #expect(plain.header("Content-Encoding") == nil && text.contains("sendBeacon") && !text.contains("\n//"))
        #expect(plain.header("ETag") == etag)
        let again = try await collector.send("/tributary.js", method: "GET", headers: [("If-None-Match", etag)])
        #expect(again.status == 304 && again.body.isEmpty)
        let refusesGzip = try await collector.send("/tributary.js", method: "GET", headers: [("Accept-Encoding", "gzip;q=0")])
        #expect(refusesGzip.header("Content-Encoding") == nil)
    }

    @Test("settings: the site's privacy choices and the configured limits, under the same checks as sending")
    func settings() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 21,
                                         environment: ["TRIBUTARY_COLLECTOR_TRACKER_BATCH_SIZE": "50"])
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let fresh = try await collector.send("/v1/settings?writeKey=\(site.key)", method: "GET", headers: [])
        #expect(fresh.status == 200)
        #expect(fresh.json["batchSize"] as? Int == 50 && fresh.json["flushIntervalMs"] as? Int == 500)
        #expect(fresh.json["cookies"] as? Bool == false && fresh.json["honorDnt"] as? Bool == false)
        _ = try await collector.command(["sites", "update", String(site.id), "--tracker-cookies", "true", "--honor-dnt", "true",
                                         "--allowed-origin", "https://Shop.example"])
        try await Task.sleep(for: .seconds(1))
        let changed = try await collector.send("/v1/settings?writeKey=\(site.key)", method: "GET",
                                               headers: [("Origin", "https://shop.example")])
        #expect(changed.status == 200 && changed.json["cookies"] as? Bool == true && changed.json["honorDnt"] as? Bool == true)
        #expect(changed.header("Access-Control-Allow-Origin") == "https://shop.example")
        let elsewhere = try await collector.send("/v1/settings?writeKey=\(site.key)", method: "GET",
                                                 headers: [("Origin", "https://other.example")])
        #expect(elsewhere.status == 403 && elsewhere.errorCode == "origin_not_allowed")
        let unknown = try await collector.send("/v1/settings?writeKey=trk_nope", method: "GET", headers: [])
        #expect(unknown.status == 401 && unknown.errorCode == "invalid_write_key")
        let missing = try await collector.send("/v1/settings", method: "GET", headers: [])
        #expect(missing.status == 401 && missing.errorCode == "missing_write_key")
        // A malformed origin is refused by the command with a reason, and changes nothing.
        await #expect(throws: (any Error).self) {
            _ = try await collector.command(["sites", "update", String(site.id), "--allowed-origin", "https://shop.example/path"])
        }
        _ = try await collector.command(["sites", "update", String(site.id), "--any-origin"])
        try await Task.sleep(for: .seconds(1))
        let anywhere = try await collector.send("/v1/settings?writeKey=\(site.key)", method: "GET",
                                                headers: [("Origin", "https://other.example")])
        #expect(anywhere.status == 200)
    }
}
