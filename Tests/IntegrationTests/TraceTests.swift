import Foundation
import Testing
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting

extension DisruptiveTests {
    /// `health-checker trace` (and `GET /trace/<id>`) against the whole pipeline as real processes.
    @Suite("Trace: one event's journey through every stage", .serialized)
    struct TraceTests {
        /// The trace of `id` as JSON (the CLI), or nil when the command failed.
        static func trace(_ f: HealthFixture, _ id: String) async -> [String: Any]? {
            try? await f.json("health-checker", ["trace", id, "--site", String(f.site.id)])
        }

        /// The state of each stage, by stage name.
        static func states(_ trace: [String: Any]?) -> [String: String] {
            var out: [String: String] = [:]
            for stage in trace?["stages"] as? [[String: Any]] ?? [] {
                out[stage["stage"] as? String ?? ""] = stage["state"] as? String
            }
            return out
        }

        /// Waits until the trace of `id` has `want` (stage → state) and returns it.
        static func traced(_ f: HealthFixture, _ id: String, _ want: [String: String]) async throws -> [String: Any] {
            var last: [String: Any]?
            let ok = await eventually(timeout: .seconds(40)) {
                last = await trace(f, id)
                let states = states(last)
                return want.allSatisfy { states[$0.key] == $0.value }
            }
            #expect(ok, "trace of \(id): \(states(last)), wanted \(want)")
            return try #require(last)
        }

        /// Sends one raw event object as a batch through the collector.
        static func sendRaw(_ f: HealthFixture, _ event: [String: Any]) async throws {
            let body = try JSONSerialization.data(withJSONObject: ["batch": [event]])
            let auth = Data((f.site.key + ":").utf8).base64EncodedString()
            let response = try await f.http.send(HTTPClientRequest(
                method: "POST", url: "http://127.0.0.1:\(f.collectorPort)/v1/batch",
                headers: [("Content-Type", "application/json"), ("Authorization", "Basic \(auth)")], body: Array(body)))
            #expect(response.status == 200)
        }

        /// Whether a `/trace` answer matches docs/health-openapi.yaml.
        static func matchesOpenAPI(_ f: HealthFixture, _ response: HTTPClientResponse) async throws -> Bool {
            let file = f.directory + "/trace-\(UUID().uuidString).json"
            try Data(response.body).write(to: URL(fileURLWithPath: file))
            let root = URL(fileURLWithPath: f.env.fixtures).deletingLastPathComponent().deletingLastPathComponent().path
            return try await runProcess(f.env.python, [f.env.fixtures + "/openapi/describe.py", root + "/docs/health-openapi.yaml",
                                                       "--check", "GET", "/trace/{id}", String(response.status), file],
                                        stderrPath: f.directory + "/openapi-check.log") == 0
        }

        @Test("stored and delivered; rejected; dead-lettered; waiting in a queue; lost from a queue; over HTTP with the admin token")
        func journeys() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let sink = "sink \(f.sinkName)"

                // Stored, aggregated and delivered.
                let delivered = try await f.send(count: 1)[0]
                let trace = try await Self.traced(f, delivered, ["received": "done", "hydration": "done", "aggregator": "done", sink: "done"])
                #expect(trace["messageId"] as? String == delivered)
                let eventID = try #require(trace["eventId"] as? Int64 ?? (trace["eventId"] as? NSNumber)?.int64Value)
                #expect(trace["stoppedAt"] == nil)
                let stages = trace["stages"] as? [[String: Any]] ?? []
                #expect((stages.first { $0["stage"] as? String == "hydration" }?["summary"] as? String)?.contains("track \"Signed Up\"") == true)
                let attempts = (stages.first { $0["stage"] as? String == sink }?["detail"] as? [String: Any])?["attempts"] as? [[String: Any]]
                #expect(attempts?.count == 1 && attempts?.first?["status"] as? Int == 200, "\(String(describing: attempts))")
                // By event id too, and as text.
                #expect(Self.states(await Self.trace(f, String(eventID)))[sink] == "done")
                let (text, code) = try await f.command("health-checker", ["trace", delivered])
                #expect(code == 0 && text.contains("delivered after 1 attempt(s)"), "\(text)")
                // Without its dedup row (the usual way from message id to batch): found among the recent events.
                try await f.admin.query("DELETE FROM hydration.message_ids WHERE site_id = $1 AND message_id = $2", [f.site.id, delivered])
                #expect(Self.states(await Self.trace(f, delivered))[sink] == "done")

                // Rejected by a validation rule: the trace ends there, by design.
                let invalid = "m-invalid-" + UUID().uuidString.lowercased()
                try await Self.sendRaw(f, ["type": "track", "messageId": invalid, "anonymousId": "anon-1"])
                let rejected = try await Self.traced(f, invalid, ["received": "done", "hydration": "rejected"])
                #expect(rejected["stoppedAt"] == nil)
                #expect(((rejected["stages"] as? [[String: Any]])?.last?["summary"] as? String)?.contains("rule") == true)

                // Refused by the sink with a 400: dead-lettered.
                try await f.control(f.sinkName, ["fail": 1, "status": 400])
                let refused = try await f.send(count: 1)[0]
                let dead = try await Self.traced(f, refused, ["hydration": "done", "aggregator": "done", sink: "dead_lettered"])
                #expect(dead["stoppedAt"] as? String == sink)

                // Waiting in the aggregate queue while the aggregator is stopped.
                await f.stopDaemon("aggregator")
                let waiting = try await f.send(count: 1)[0]
                let queued = try await Self.traced(f, waiting, ["hydration": "done", "aggregator": "queued", sink: "done"])
                #expect(queued["stoppedAt"] as? String == "aggregator")

                // Lost from the queue (the site's list deleted behind the pipeline's back): missing, with the replay command.
                _ = try await f.redis.send("DEL", "{aggregate}:site:\(f.site.id)")
                let lost = try await Self.traced(f, waiting, ["aggregator": "missing"])
                let summary = (lost["stages"] as? [[String: Any]])?.first { $0["stage"] as? String == "aggregator" }?["summary"] as? String ?? ""
                #expect(summary.contains("collector replay --site \(f.site.id) --batches \(lost["batchId"] ?? "")"), "\(summary)")

                // Over HTTP: the admin token is required; an unknown id is a 404 with a reason.
                let url = "http://127.0.0.1:\(f.statusPort)/trace/\(delivered)?site=\(f.site.id)"
                #expect(try await f.http.send(HTTPClientRequest(url: url)).status == 401)
                #expect(try await f.http.send(HTTPClientRequest(url: url, headers: [("Authorization", "Bearer wrong-token-0123456789")])).status == 401)
                let answer = try await f.http.send(HTTPClientRequest(url: url, headers: [("Authorization", "Bearer \(f.adminToken)")]))
                #expect(answer.status == 200)
                let body = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
                #expect(Self.states(body)[sink] == "done")
                #expect(try await Self.matchesOpenAPI(f, answer), "GET /trace does not match docs/health-openapi.yaml")
                let unknown = try await f.http.send(HTTPClientRequest(url: "http://127.0.0.1:\(f.statusPort)/trace/no-such-event",
                                                                      headers: [("Authorization", "Bearer \(f.adminToken)")]))
                #expect(unknown.status == 404)
                #expect(try await Self.matchesOpenAPI(f, unknown))
                #expect(String(decoding: unknown.body, as: UTF8.self).contains("no event with message id"))

                // The CLI: a one-line reason and exit 1 for an unknown id.
                let (missing, failed) = try await f.command("health-checker", ["trace", "no-such-event"])
                #expect(failed == 1)
                #expect(missing.isEmpty, "the reason goes to stderr: \(missing)")
            }
        }

        @Test("replay over a time range fills what was lost downstream and double counts nothing (dry run first)")
        func replayRange() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                // A site of its own (the fixture's site also carries the canary), routed to the fixture's sink.
                let added = try await f.json("collector", ["sites", "add", TestEnvironment.uniqueName("replay")])
                let site = (added["siteId"] as? NSNumber)?.int64Value ?? 0, key = added["writeKey"] as? String ?? ""
                _ = try await f.json("forwarder", ["sinks", "update", f.sinkName, "--site", String(f.site.id), "--site", String(site)])
                try await Task.sleep(for: .seconds(1))
                func send(_ n: Int) async throws -> [String] {
                    let ids = (0..<n).map { _ in "m-replay-" + UUID().uuidString.lowercased() }
                    let body = try JSONSerialization.data(withJSONObject: ["batch": ids.map {
                        ["type": "track", "event": "Replayed", "messageId": $0, "anonymousId": "anon-r", "timestamp": ISO8601.format(Date())]
                    }])
                    let response = try await f.http.send(HTTPClientRequest(
                        method: "POST", url: "http://127.0.0.1:\(f.collectorPort)/v1/batch",
                        headers: [("Content-Type", "application/json"), ("Authorization", "Basic \(Data((key + ":").utf8).base64EncodedString())")],
                        body: Array(body)))
                    #expect(response.status == 200)
                    return ids
                }
                func trace(_ id: String) async -> [String: String] {
                    Self.states(try? await f.json("health-checker", ["trace", id, "--site", String(site)]))
                }
                func count(_ sql: String) async throws -> Int64 {
                    try await f.admin.query(sql, [site]).rows.first?.int("n") ?? -1
                }
                let sink = "sink \(f.sinkName)"
                let from = ISO8601.format(Date().addingTimeInterval(-1))

                // Batch A goes all the way.
                let a = try await send(5)
                #expect(await eventually(timeout: .seconds(30)) { await trace(a[4])[sink] == "done" })
                // Batch B is stored, then lost on its way to the aggregator and the sink.
                await f.stopDaemon("aggregator")
                await f.stopDaemon("forwarder")
                let b = try await send(5)
                #expect(await eventually(timeout: .seconds(30)) {
                    let t = await trace(b[4])
                    return t["aggregator"] == "queued" && t[sink] == "queued"
                })
                _ = try await f.redis.send("DEL", "{aggregate}:site:\(site)", "{forward:\(f.sinkID)}:site:\(site)")
                try await f.start("aggregator")
                try await f.start("forwarder")
                #expect(await trace(b[0])["aggregator"] == "missing")
                let to = ISO8601.format(Date().addingTimeInterval(1))
                try await Task.sleep(for: .seconds(1))

                // The dry run names both batches and changes nothing.
                let dry = try await f.json("collector", ["replay", "--site", String(site), "--from", from, "--to", to, "--dry-run"])
                #expect((dry["batches"] as? [Any])?.count == 2, "\(dry)")
                try await Task.sleep(for: .seconds(2))
                #expect(await trace(b[0])["aggregator"] == "missing")
                #expect(try await count("SELECT count(*) AS n FROM aggregator.ledger WHERE site_id = $1") == 1)

                // The real replay fills B in and leaves A alone.
                let real = try await f.json("collector", ["replay", "--site", String(site), "--from", from, "--to", to])
                #expect(real["replayed"] as? Int == 2, "\(real)")
                #expect(await eventually(timeout: .seconds(30)) {
                    let t = await trace(b[4])
                    return t["aggregator"] == "done" && t[sink] == "done"
                })
                try await Task.sleep(for: .seconds(2))
                #expect(try await count("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1") == 10)
                #expect(try await count("SELECT count(*) AS n FROM aggregator.ledger WHERE site_id = $1") == 2)
                #expect(try await count("SELECT coalesce(sum(events), 0)::bigint AS n FROM aggregator.daily WHERE site_id = $1 AND dim = ''") == 10)
                #expect(try await count("SELECT count(*) AS n FROM forwarder.deliveries WHERE site_id = $1") == 10)
                let received = try await f.received(f.sinkName).compactMap { $0["messageId"] as? String }
                for id in a + b { #expect(received.filter { $0 == id }.count == 1, "\(id) reached the sink \(received.filter { $0 == id }.count) times") }
            }
        }
    }
}
