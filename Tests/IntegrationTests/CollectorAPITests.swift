import Foundation
import Testing
import TributaryHTTP
import TributaryPostgres
import TributaryTesting

@Suite("Collector: the ingest API over real HTTP")
struct CollectorAPITests {
    let env: TestEnvironment

    init() throws {
        env = try TestEnvironment.current()
    }

    @Test("every endpoint accepts its message; the batch is saved and enqueued once, without the write key")
    func everyEndpoint() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 1)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        var accepted: [Int64] = []

        let batch = try await collector.send("/v1/batch", key: site.key, json: """
            {"batch":[{"type":"track","event":"Signed Up","userId":"u1","messageId":"m-batch-1"},
                      {"type":"metric","name":"api.latency","kind":"timer","value":12.5,"tags":{"route":"/v1"}}],
             "sentAt":"2026-11-25T10:00:00.000Z"}
            """)
        #expect(batch.status == 200)
        #expect(batch.json["success"] as? Bool == true)
        accepted.append(try #require(batch.batchID))

        for endpoint in ["track", "identify", "page", "screen", "group", "alias"] {
            let response = try await collector.send("/v1/\(endpoint)", key: site.key,
                                                    json: #"{"userId":"u1","messageId":"m-\#(endpoint)","event":"E","groupId":"g","previousId":"p"}"#)
            #expect(response.status == 200, "\(endpoint): \(String(decoding: response.body, as: UTF8.self))")
            accepted.append(try #require(response.batchID))
        }
        for endpoint in ["track", "page"] {
            let message = #"{"writeKey":"\#(site.key)","anonymousId":"a1","event":"Opened","name":"Home","messageId":"m-pixel-\#(endpoint)"}"#
            let data = Data(message.utf8).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            let response = try await collector.send("/v1/pixel/\(endpoint)?data=\(data)", method: "GET", headers: [])
            #expect(response.status == 200)
            #expect(response.header("content-type") == "image/gif")
            #expect(Array(response.body.prefix(6)) == Array("GIF89a".utf8))
        }

        let saved = try await collector.rawBatches(site: site.id)
        #expect(saved.count == 9)
        for id in accepted { #expect(saved[id] != nil) }
        #expect(saved[accepted[0]]?.0 == 2)
        for (_, (count, payload)) in saved {
            #expect(!payload.contains(site.key))
            let object = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
            let events = try #require(object?["batch"] as? [[String: Any]])
            #expect(events.count == Int(count))
        }
        let trackPayload = try #require(saved[accepted[1]]?.1)
        #expect(trackPayload.contains(#""type":"track""#))
        let queued = await eventually { (try? await collector.queuedBatchIDs(site: site.id).count) == 9 }
        #expect(queued)
        let ids = try await collector.queuedBatchIDs(site: site.id)
        #expect(Set(ids) == Set(saved.keys))
        #expect(ids.count == Set(ids).count)
        let outboxCleared = await eventually {
            let n = try? await collector.db.query("SELECT count(*) AS n FROM collector.outbox WHERE site_id = $1", [site.id])
            return (try? n?.first?.int("n")) == 0
        }
        #expect(outboxCleared)
    }

    @Test("beacons (text/plain, key in the body) and gzip bodies are accepted")
    func beaconsAndGzip() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 2)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let beacon = try await collector.send("/v1/batch", json: #"{"writeKey":"\#(site.key)","batch":[{"type":"page","anonymousId":"a"}]}"#,
                                              headers: [("Content-Type", "text/plain;charset=UTF-8")])
        #expect(beacon.status == 200)
        let plain = Array(#"{"batch":[{"type":"track","event":"zipped","anonymousId":"a"}]}"#.utf8)
        let zipped = try gzip(plain)
        let gz = try await collector.send("/v1/batch", key: site.key, body: zipped,
                                          headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(gz.status == 200)
        let saved = try await collector.rawBatches(site: site.id)
        #expect(saved[try #require(gz.batchID)]?.1 == String(decoding: plain, as: UTF8.self))
        #expect(saved.count == 2)

        let truncated = try await collector.send("/v1/batch", key: site.key, body: Array(zipped.dropLast(9)),
                                                 headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(truncated.status == 400)
        #expect(truncated.errorCode == "invalid_gzip")
        let bomb = try gzip(Array(repeating: UInt8(ascii: " "), count: 2_000_000))
        let tooBig = try await collector.send("/v1/batch", key: site.key, body: bomb,
                                              headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(tooBig.status == 413)
        #expect(try await collector.rawBatches(site: site.id).count == 2)
    }

    @Test("every refusal has its status and a JSON body that says what is wrong; nothing is saved")
    func refusals() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 3)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let restricted = try await collector.addSite(extra: ["--allowed-origin", "https://shop.example"])
        let valid = #"{"batch":[{"type":"track","event":"x","userId":"u"}]}"#

        func check(_ response: HTTPClientResponse, _ status: Int, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(response.status == status, "\(String(decoding: response.body, as: UTF8.self))", sourceLocation: sourceLocation)
            #expect(response.errorCode == code, sourceLocation: sourceLocation)
            #expect(response.json["success"] as? Bool == false, sourceLocation: sourceLocation)
            let message = (response.json["error"] as? [String: Any])?["message"] as? String
            #expect(message?.isEmpty == false, sourceLocation: sourceLocation)
        }

        check(try await collector.send("/v1/batch", key: site.key, json: #"{"batch":[{"type":"track""#), 400, "malformed_json")
        check(try await collector.send("/v1/batch", key: site.key, json: "[]"), 400, "malformed_json")
        check(try await collector.send("/v1/batch", key: site.key, json: #"{"batch":"nope"}"#), 400, "invalid_batch")
        check(try await collector.send("/v1/batch", key: site.key, json: ""), 400, "empty_body")
        check(try await collector.send("/v1/batch", key: site.key, body: Array(#"{"batch":[{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}]}"#.utf8)),
              400, "malformed_json")
        check(try await collector.send("/v1/batch", key: site.key, json: #"{"batch":["# + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "]}"),
              400, "malformed_json")
        check(try await collector.send("/v1/batch", key: site.key, json: #"{"batch":[{"n":1e99999}]}"#), 400, "malformed_json")
        check(try await collector.send("/v1/batch", json: valid), 401, "missing_write_key")
        check(try await collector.send("/v1/batch", key: "trk_unknown", json: valid), 401, "invalid_write_key")
        check(try await collector.send("/v1/batch", key: restricted.key, json: valid,
                                       headers: [("Content-Type", "application/json"), ("Origin", "https://evil.example")]),
              403, "origin_not_allowed")
        let allowed = try await collector.send("/v1/batch", key: restricted.key, json: valid,
                                               headers: [("Content-Type", "application/json"), ("Origin", "https://shop.example")])
        #expect(allowed.status == 200)
        #expect(allowed.header("access-control-allow-origin") == "https://shop.example")

        let huge = #"{"batch":[{"p":""# + String(repeating: "x", count: 600_000) + #""}]}"#
        check(try await collector.send("/v1/batch", key: site.key, json: huge), 413, "request_too_large")
        let bigEvent = #"{"batch":[{"p":""# + String(repeating: "x", count: 40_000) + #""}]}"#
        check(try await collector.send("/v1/batch", key: site.key, json: bigEvent), 413, "event_too_large")
        let many = #"{"batch":["# + Array(repeating: "{}", count: 2_501).joined(separator: ",") + "]}"
        check(try await collector.send("/v1/batch", key: site.key, json: many), 413, "too_many_events")
        check(try await collector.send("/v1/batch", key: site.key, json: valid, headers: [("Content-Type", "application/xml")]),
              415, "unsupported_media_type")
        check(try await collector.send("/v1/batch", key: site.key, json: valid,
                                       headers: [("Content-Type", "application/json"), ("Content-Encoding", "br")]),
              415, "unsupported_encoding")
        check(try await collector.send("/v1/pixel/track?data=%%%", method: "GET", headers: []), 400, "invalid_data")

        #expect(try await collector.rawBatches(site: site.id).isEmpty)
        _ = try await collector.command(["sites", "disable", String(site.id)])
        let disabled = await eventually(timeout: .seconds(10)) {
            (try? await collector.send("/v1/batch", key: site.key, json: valid))?.status == 403
        }
        #expect(disabled)
        let savedBefore = try await collector.rawBatches(site: site.id).count
        check(try await collector.send("/v1/batch", key: site.key, json: valid), 403, "site_disabled")
        #expect(try await collector.rawBatches(site: site.id).count == savedBefore)
        // The daemon is still up and healthy after all of that.
        #expect(try await collector.send("/healthz", method: "GET", headers: []).status == 200)
    }

    @Test("a site over its request rate gets 429 with Retry-After")
    func rateLimit() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 4, environment: [
            "TRIBUTARY_COLLECTOR_RATE_LIMIT_REQUESTS_PER_SECOND": "0.01",  // no token comes back while the test runs, however slow the machine
            "TRIBUTARY_COLLECTOR_RATE_LIMIT_BURST": "3",
        ])
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let other = try await collector.addSite()
        var statuses: [Int] = []
        for _ in 0..<5 {
            statuses.append(try await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#).status)
        }
        #expect(statuses == [200, 200, 200, 429, 429])
        let limited = try await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#)
        #expect(limited.errorCode == "rate_limited")
        #expect(Int(limited.header("retry-after") ?? "") ?? 0 >= 1)
        // Another site is not affected.
        #expect(try await collector.send("/v1/track", key: other.key, json: #"{"event":"e","userId":"u"}"#).status == 200)
    }

    @Test("when the hydrate queue is over its depth limit, requests get 503 with Retry-After")
    func backpressure() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 5, environment: [
            "TRIBUTARY_COLLECTOR_BACKPRESSURE_MAX_QUEUE_DEPTH": "3",
        ])
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        var accepted = 0
        for _ in 0..<4 {
            let status = try await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#).status
            #expect(status == 200)
            if status == 200 { accepted += 1 }
        }
        let refused = await eventually {
            let status = (try? await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#))?.status
            if status == 200 { accepted += 1 }
            return status == 503
        }
        #expect(refused)
        let response = try await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#)
        #expect(response.errorCode == "backpressure")
        #expect(response.header("retry-after") == "5")
        #expect(try await collector.rawBatches(site: site.id).count == accepted)
    }

    @Test("key rotation and revocation take effect in the running collector within seconds")
    func keyRotation() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 6)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let body = #"{"event":"e","userId":"u"}"#
        #expect(try await collector.send("/v1/track", key: site.key, json: body).status == 200)

        let kept = try JSONSerialization.jsonObject(with: Data(try await collector.command(
            ["sites", "rotate-key", String(site.id), "--keep-old", "--json"]).utf8)) as? [String: Any]
        let second = try #require(kept?["writeKey"] as? String)
        #expect(await eventually { (try? await collector.send("/v1/track", key: second, json: body))?.status == 200 })
        #expect(try await collector.send("/v1/track", key: site.key, json: body).status == 200)

        let rotated = try JSONSerialization.jsonObject(with: Data(try await collector.command(
            ["sites", "rotate-key", String(site.id), "--json"]).utf8)) as? [String: Any]
        let third = try #require(rotated?["writeKey"] as? String)
        #expect(await eventually { (try? await collector.send("/v1/track", key: site.key, json: body))?.status == 401 })
        #expect(try await collector.send("/v1/track", key: second, json: body).status == 401)
        #expect(try await collector.send("/v1/track", key: third, json: body).status == 200)

        _ = try await collector.command(["sites", "revoke-key", String(site.id), String(third.prefix(12))])
        #expect(await eventually { (try? await collector.send("/v1/track", key: third, json: body))?.status == 401 })
        let list = try await collector.command(["sites", "list", "--json"])
        #expect(!list.contains(third))
        #expect(list.contains(String(third.prefix(12))))

        let updated = try await collector.command(["sites", "update", String(site.id), "--keep-raw-ip", "true", "--json"])
        #expect(updated.contains(#""keepRawIp":true"#))
        let keeps = try await collector.db.query("SELECT keep_raw_ip FROM collector.sites WHERE site_id = $1", [site.id])
        #expect(try keeps.first?.bool("keep_raw_ip") == true)
        await #expect(throws: (any Error).self) { _ = try await collector.command(["sites", "update", String(site.id)]) }
    }

    @Test("CORS preflights, and the probes on the ingest port")
    func corsAndProbes() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 7)
        try await collector.start()
        defer { Task { await collector.stop() } }
        _ = try await collector.addSite(extra: ["--allowed-origin", "https://app.example"])
        let preflight = await eventually {
            let r = try? await collector.send("/v1/batch", method: "OPTIONS", headers: [
                ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")])
            return r?.header("access-control-allow-origin") == "https://app.example"
        }
        #expect(preflight)
        let response = try await collector.send("/v1/batch", method: "OPTIONS", headers: [("Origin", "https://app.example")])
        #expect(response.status == 204)
        #expect(response.header("access-control-allow-methods")?.contains("POST") == true)
        #expect(response.header("access-control-allow-headers")?.contains("Authorization") == true)
        #expect(try await collector.send("/healthz", method: "GET", headers: []).status == 200)
        #expect(try await collector.send("/readyz", method: "GET", headers: []).status == 200)
        let metrics = try await collector.send("/metrics", method: "GET", headers: [])
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("tributary_"))
    }
}

/// gzip-compresses bytes with the system's gzip (the collector must accept what real clients send).
func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let input = FileManager.default.temporaryDirectory.appendingPathComponent("gz-\(UUID().uuidString)")
    try Data(bytes).write(to: input)
    defer { try? FileManager.default.removeItem(at: input) }
    let child = try ChildProcess("/bin/gzip", ["-k", "-f", input.path])
    var status: Int32?
    while status == nil {
        if !child.isRunning { status = child.exitCode }
        usleep(10_000)
    }
    let output = URL(fileURLWithPath: input.path + ".gz")
    defer { try? FileManager.default.removeItem(at: output) }
    return Array(try Data(contentsOf: output))
}
