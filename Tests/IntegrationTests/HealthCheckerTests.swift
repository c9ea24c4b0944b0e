import Foundation
import Testing
import TributaryHTTP
import TributaryPostgres
import TributaryTesting

extension DisruptiveTests {
    /// The health-checker against the whole pipeline as real processes, with local
    /// stand-ins for Slack, PagerDuty and a webhook receiver.
    @Suite("Health-checker: notices what stops, pages with escalation, resolves", .serialized)
    struct HealthCheckerTests {
        static let wait = Duration.seconds(40)

        /// Waits until the pipeline is healthy and the canary went all the way.
        static func healthy(_ f: HealthFixture) async throws {
            let ok = await eventually(timeout: .seconds(60)) {
                guard let (code, body) = try? await f.status(), code == 200, body["status"] as? String == "ok" else { return false }
                let checks = body["checks"] as? [[String: Any]] ?? []
                return checks.contains { ($0["name"] as? String)?.hasPrefix("canary:") == true && $0["status"] as? String == "ok" }
            }
            if !ok {
                let failing = (try? await f.status().body["checks"] as? [[String: Any]])?
                    .filter { $0["status"] as? String != "ok" }.map { "\($0["name"] ?? ""): \($0["summary"] ?? "")" } ?? []
                Issue.record("the pipeline did not become healthy: \(failing)")
            }
            #expect(ok)
        }

        @Test("Healthy: /status 200, check --once passes, the canary is followed to every stage, receivers get test notifications")
        func healthyPipeline() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await f.send(count: 5)
                try await Self.healthy(f)
                let canary = try #require(try await f.check("canary:\(f.site.id)"))
                let lags = (canary["detail"] as? [String: Any])?["lagSeconds"] as? [String: Any] ?? [:]
                #expect(Set(lags.keys) == ["received", "stored", "aggregated", "delivered"])
                let (documented, code200) = try await f.statusMatchesOpenAPI()
                #expect(documented && code200 == 200, "see \(f.directory)/openapi-check.log")
                let page = try await f.http.send(.init(url: "http://127.0.0.1:\(f.statusPort)/"))
                #expect(page.status == 200)
                #expect(String(decoding: page.body, as: UTF8.self).contains("Tributary: ok"))
                let metrics = try await f.http.send(.init(url: "http://127.0.0.1:\(f.statusPort)/metrics"))
                #expect(String(decoding: metrics.body, as: UTF8.self).contains("tributary_health_canary_lag_seconds"))

                let (table, code) = try await f.command("health-checker", ["check", "--once"])
                #expect(code == 0, "\(table)")
                #expect(table.contains("checks pass"))
                let once = try await f.json("health-checker", ["check", "--once"])
                #expect(once["status"] as? String == "ok")

                for name in [f.slack, f.pagerDuty, f.webhook] {
                    let (output, code) = try await f.command("health-checker", ["receivers", "test", name])
                    #expect(code == 0, "\(output)")
                }
                let slack = try await f.received(f.slack)
                #expect(slack.contains { ($0["text"] as? String)?.contains("[TEST]") == true })
                let pd = try await f.received(f.pagerDuty)
                #expect(pd.map { $0["event_action"] as? String } == ["trigger", "resolve"])
                #expect(try await f.received(f.webhook).first?["kind"] as? String == "test")
                let listed = try await f.command("health-checker", ["receivers", "list", "--json"])
                #expect(listed.output.contains(f.pagerDuty) && !listed.output.contains("pd-routing-key"))
                // The dead man's switch is pinged after rounds, at most once per interval (1 s here).
                let pings = try await f.received(f.deadMansSwitch).count
                #expect(pings >= 2)
                // Nothing was wrong, so nothing was paged.
                #expect(try await f.received(f.pagerDuty).count == 2)
            }
        }

        @Test("A stopped worker (SIGSTOP: alive, silent) warns, then pages critical, then resolves after SIGCONT")
        func stoppedWorker() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                f.signal("hydration", SIGSTOP)
                try await f.send(count: 3)
                let paged = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("heartbeat:hydration").map(\.severity)) == ["warning", "critical"]
                }
                let hydrationEvents = try await f.pagerDutyEvents("heartbeat:hydration")
                #expect(paged, "\(hydrationEvents)")
                let (documented, code503) = try await f.statusMatchesOpenAPI()
                #expect(documented && code503 == 503, "see \(f.directory)/openapi-check.log")
                let slack = try await f.received(f.slack).compactMap { $0["text"] as? String }
                #expect(slack.contains { $0.hasPrefix("[WARNING] heartbeat:hydration") && $0.contains("runbooks/heartbeat.md") })
                #expect(slack.contains { $0.hasPrefix("[CRITICAL] heartbeat:hydration") })
                f.signal("hydration", SIGCONT)
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("heartbeat:hydration").last?.action) == "resolve"
                }
                #expect(resolved)
                try await Self.healthy(f)
                // One cause, one page: the stalled queue and the late canary were grouped under it.
                let others = try await f.received(f.pagerDuty).compactMap { $0["dedup_key"] as? String }
                    .filter { $0 != "tributary:heartbeat:hydration" }
                #expect(others.isEmpty, "\(others)")
                let incidentSQL = "SELECT severity, resolved_at IS NOT NULL AS resolved FROM health.incidents WHERE check_name = 'heartbeat:hydration'"
                _ = await eventually(timeout: Self.wait) {
                    (try? await f.admin.query(incidentSQL).rows.first?.bool("resolved")) == true
                }
                let incidents = try await f.admin.query(incidentSQL).rows
                #expect(incidents.count == 1)
                #expect(try incidents.first?.string("severity") == "critical")
                #expect(try incidents.first?.bool("resolved") == true)
                // Warning, critical and resolve, to each of the three receivers. History is written
                // behind the sends, so the last rows can land a moment after the resolve page.
                let sql = "SELECT receiver, kind, severity, ok FROM health.notifications WHERE check_name = 'heartbeat:hydration'"
                let allSent = await eventually(timeout: Self.wait) {
                    (try? await f.admin.query(sql).rows.filter { try $0.bool("ok") == true }.count) ?? 0 >= 9
                }
                let notifications = try await f.admin.query(sql).rows.map { row in
                    "\(try row.string("receiver") ?? "") \(try row.string("kind") ?? "") \(try row.string("severity") ?? "") ok=\(try row.bool("ok") ?? false)"
                }
                #expect(allSent, "\(notifications)")
            }
        }

        @Test("A stuck worker (alive and beating, completing nothing while work waits) is a stall: it pages, and resolves")
        func stuckWorker() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                // Hydration cannot write its ledger while this lock is held; reads still work.
                try await f.admin.withTransaction { tx in
                    try await tx.query("LOCK TABLE hydration.ledger IN SHARE MODE")
                    try await f.send(count: 2)
                    let paged = await eventually(timeout: Self.wait) {
                        (try? await f.pagerDutyEvents("stalled:hydrate").map(\.severity)) == ["warning", "critical"]
                    }
                    #expect(paged)
                    #expect(try await f.check("heartbeat:hydration")?["status"] as? String == "ok")
                }
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("stalled:hydrate").last?.action) == "resolve"
                }
                #expect(resolved)
                try await Self.healthy(f)
                // The late canary was the stall's doing: one page.
                let keys = Set(try await f.received(f.pagerDuty).compactMap { $0["dedup_key"] as? String })
                #expect(keys == ["tributary:stalled:hydrate"], "\(keys)")
            }
        }

        @Test("A killed daemon (kill -9) warns, pages and resolves once it runs again")
        func killedDaemon() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                await f.kill9("aggregator")
                let paged = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("heartbeat:aggregator").map(\.severity)) == ["warning", "critical"]
                }
                let aggregatorEvents = try await f.pagerDutyEvents("heartbeat:aggregator")
                #expect(paged, "\(aggregatorEvents)")
                let hook = try await f.received(f.webhook).filter { $0["check"] as? String == "heartbeat:aggregator" }
                #expect(hook.first?["kind"] as? String == "trigger")
                #expect((hook.first?["summary"] as? String)?.contains("stopped beating") == true)
                try await f.start("aggregator")
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("heartbeat:aggregator").last?.action) == "resolve"
                }
                #expect(resolved)
                try await Self.healthy(f)
            }
        }

        @Test("A queue filled past its threshold alerts while its stage keeps working, and resolves when it drains")
        func backlog() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                // The sink answers slowly: the forwarder keeps delivering, one event at a time.
                try await f.control(f.sinkName, ["stall": 0.2])
                for _ in 0..<70 { try await f.send(count: 1) }
                let queue = "forward:\(f.sinkID)"
                let paged = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("backlog:\(queue)").map(\.severity))?.starts(with: ["warning"]) == true
                }
                #expect(paged)
                // Each receiver is sent to on its own: the webhook may get the warning a moment after PagerDuty.
                var warning: [String: Any]?
                _ = await eventually(timeout: Self.wait) {
                    warning = (try? await f.received(f.webhook))?.first { $0["check"] as? String == "backlog:\(queue)" }
                    return warning != nil
                }
                #expect((warning?["summary"] as? String)?.contains("items wait in \(queue)") == true, "\(String(describing: warning))")
                try await f.control(f.sinkName, [:])
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("backlog:\(queue)").last?.action) == "resolve"
                }
                #expect(resolved)
                // The stage never stopped, so it was a backlog, not a stall.
                #expect(try await f.pagerDutyEvents("stalled:\(queue)").isEmpty)
            }
        }

        @Test("A deleted ledger row is found: the alert names the missing batch and the replay command")
        func missingLedgerRow() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await f.send(count: 4)
                try await Self.healthy(f)
                let row = try await f.admin.query("""
                    SELECT batch_id FROM hydration.ledger WHERE site_id = $1 AND events_received = 4 LIMIT 1
                    """, [f.site.id]).rows.first
                let batch = try #require(try row?.int("batch_id"))
                try await f.admin.query("DELETE FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2", [f.site.id, batch])
                let replay = "collector replay --site \(f.site.id) --batches \(batch)"
                let alerted = await eventually(timeout: Self.wait) {
                    (try? await f.received(f.webhook))?.contains { $0["check"] as? String == "tie-hydration" } == true
                }
                #expect(alerted)
                let alert = try await f.received(f.webhook).first { $0["check"] as? String == "tie-hydration" }
                #expect((alert?["summary"] as? String)?.contains("raw batch \(batch) of site \(f.site.id)") == true)
                let detail = alert?["detail"] as? [String: Any]
                #expect((detail?["replay"] as? [String]) == [replay])
                #expect(((detail?["batches"] as? [[String: Any]])?.first?["batch"] as? NSNumber)?.int64Value == batch)
                #expect((alert?["runbook"] as? String)?.hasSuffix("runbooks/tie-hydration.md") == true)
                let (output, code) = try await f.command("health-checker", ["check", "--once"])
                #expect(code == 1)
                #expect(output.contains("tie-hydration") && output.contains(replay), "\(output)")
                // The command the alert names fills the gap, and counts nothing twice downstream.
                let counted = try await f.admin.query("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1 AND name <> 'tributary_canary'", [f.site.id]).rows
                let before = try counted.first?.int("n") ?? 0
                let dry = try await f.command("collector", Array(replay.split(separator: " ").dropFirst().map(String.init)) + ["--dry-run"])
                #expect(dry.code == 0 && dry.output.contains("would replay 1 batch(es)"), "\(dry.output)")
                let (replayed, replayCode) = try await f.command("collector", Array(replay.split(separator: " ").dropFirst().map(String.init)))
                #expect(replayCode == 0, "\(replayed)")
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.received(f.webhook))?.contains { $0["check"] as? String == "tie-hydration" && $0["kind"] as? String == "resolve" } == true
                }
                #expect(resolved)
                let after = try await f.admin.query("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1 AND name <> 'tributary_canary'", [f.site.id]).rows
                #expect(try after.first?.int("n") == before)
                #expect(before == 4)
                let aggregated = try await f.admin.query(
                    "SELECT count(*) AS n FROM aggregator.ledger WHERE site_id = $1 AND batch_id = $2", [f.site.id, batch]).rows
                #expect(try aggregated.first?.int("n") == 1)
            }
        }

        @Test("A batch that keeps none of its many events is an anomalous job result, and alerts")
        func anomaly() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                // 120 track calls without an event name: all invalid (each recorded with its rule), none kept.
                let batch = (0..<120).map { _ in ["type": "track", "anonymousId": "a", "messageId": UUID().uuidString] }
                let auth = Data((f.site.key + ":").utf8).base64EncodedString()
                let response = try await f.http.send(.init(method: "POST", url: "http://127.0.0.1:\(f.collectorPort)/v1/batch",
                                                           headers: [("Content-Type", "application/json"), ("Authorization", "Basic \(auth)")],
                                                           body: Array(try JSONSerialization.data(withJSONObject: ["batch": batch]))))
                #expect(response.status == 200)
                let alerted = await eventually(timeout: Self.wait) {
                    (try? await f.received(f.webhook))?.contains { $0["check"] as? String == "anomaly:hydration:batch" } == true
                }
                #expect(alerted)
                let alert = try await f.received(f.webhook).first { $0["check"] as? String == "anomaly:hydration:batch" }
                #expect((alert?["summary"] as? String)?.contains("accepted 0 of 120 events") == true)
            }
        }

        @Test("PostgreSQL down is one grouped page, resolved when it is back; /status flips to 503 and back")
        func postgresDown() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                try await f.env.stopDisruptPostgres()
                do {
                    // Sent while PostgreSQL is down: the collector spools them (a failure of the same cause).
                    try await f.send(count: 2)
                    let paged = await eventually(timeout: Self.wait) {
                        (try? await f.pagerDutyEvents("postgres").map(\.severity)) == ["warning", "critical"]
                    }
                    #expect(paged)
                    #expect(try await f.status().code == 503)
                    // A health-checker (re)started while PostgreSQL is down still starts, and still pages
                    // (its receivers come from Redis's copy).
                    await f.stopDaemon("health-checker")
                    try await f.start("health-checker", waitFor: "healthz")
                    let again = await eventually(timeout: Self.wait) {
                        (try? await f.pagerDutyEvents("postgres").count) ?? 0 >= 3
                    }
                    #expect(again)
                } catch {
                    try? await f.env.startDisruptPostgres()
                    throw error
                }
                try await f.env.startDisruptPostgres()
                let resolved = await eventually(timeout: Self.wait) {
                    (try? await f.pagerDutyEvents("postgres").last?.action) == "resolve"
                }
                #expect(resolved)
                try await Self.healthy(f)
                let keys = Set(try await f.received(f.pagerDuty).compactMap { $0["dedup_key"] as? String })
                #expect(keys == ["tributary:postgres"], "\(keys)")
                // The pages said what else was failing for the same reason (the collector's spool).
                // Which page first lists it depends on when the collector's heartbeat reported
                // the spool against when the page escalated; the one sent after the restart does.
                let triggers = try await f.received(f.pagerDuty).filter { ($0["event_action"] as? String) == "trigger" }
                let grouped = triggers.map {
                    ((($0["payload"] as? [String: Any])?["custom_details"] as? [String: Any])?["grouped"] as? [String]) ?? []
                }
                #expect(grouped.contains { $0.contains("spool") }, "\(triggers)")
                #expect(try await f.status().code == 200)
            }
        }

        @Test("Maintenance mode silences alerts and shows on the status page; the switch lives in Redis")
        func maintenance() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.healthy(f)
                let on = try await f.json("health-checker", ["maintenance", "on", "--reason", "upgrading hydration"])
                #expect(on["maintenance"] as? Bool == true)
                f.signal("hydration", SIGSTOP)
                let shown = await eventually(timeout: Self.wait) {
                    guard let (code, body) = try? await f.status() else { return false }
                    let failing = (body["checks"] as? [[String: Any]] ?? []).contains {
                        $0["name"] as? String == "heartbeat:hydration" && $0["status"] as? String == "failing"
                    }
                    return code == 200 && body["status"] as? String == "maintenance" && failing
                }
                #expect(shown)
                let page = try await f.http.send(.init(url: "http://127.0.0.1:\(f.statusPort)/"))
                #expect(String(decoding: page.body, as: UTF8.self).contains("upgrading hydration"))
                try await Task.sleep(for: .seconds(3))
                f.signal("hydration", SIGCONT)
                try await Task.sleep(for: .seconds(3))
                #expect(try await f.json("health-checker", ["maintenance", "status"])["reason"] as? String == "upgrading hydration")
                _ = try await f.json("health-checker", ["maintenance", "off"])
                try await Self.healthy(f)
                #expect(try await f.received(f.pagerDuty).isEmpty)
                #expect(try await f.received(f.slack).isEmpty)
            }
        }
    }
}
