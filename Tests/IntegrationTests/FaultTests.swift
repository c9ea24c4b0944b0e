import Foundation
import Testing
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting

extension DisruptiveTests {
    /// Faults under load, each checked by the end-to-end verifier: nothing acknowledged is
    /// lost, nothing is counted twice, and the health-checker raised and resolved what the
    /// fault deserves.
    @Suite("Faults under load: 0 lost, 0 double counted", .serialized)
    struct FaultTests {
        /// Sends `events` at `rate` over the fixture's site and two more in the background,
        /// runs `fault` a few seconds in, then verifies every stage.
        static func underLoad(_ f: HealthFixture, events: Int = 4000, rate: Int = 400, faultAfter: Duration = .seconds(3),
                              weights: [Double]? = nil, expectRefusals: Bool = false, extra: [String] = [],
                              _ fault: ([[String: Any]]) async throws -> Void) async throws {
            var sites: [[String: Any]] = [["siteId": f.site.id, "writeKey": f.site.key]]
            for _ in 0..<2 {
                let added = try await f.json("collector", ["sites", "add", TestEnvironment.uniqueName("fault")])
                sites.append(["siteId": added["siteId"]!, "writeKey": added["writeKey"]!])
            }
            _ = try await f.json("forwarder", ["sinks", "update", f.sinkName, "--batch-size", "50", "--concurrency", "4"]
                                 + sites.flatMap { ["--site", "\($0["siteId"]!)"] })
            if let weights {
                for i in sites.indices where i < weights.count { sites[i]["weight"] = weights[i] }
            }
            try await Task.sleep(for: .seconds(1))
            let sitesFile = f.directory + "/sites-\(UUID().uuidString).json"
            try JSONSerialization.data(withJSONObject: sites).write(to: URL(fileURLWithPath: sitesFile))
            let record = f.directory + "/record-\(UUID().uuidString).jsonl"
            let generator = try ChildProcess(f.env.binDirectory + "/tributary-load", [
                "run", "--collector", "http://127.0.0.1:\(f.collectorPort)", "--sites-file", sitesFile, "--events", String(events),
                "--rate", String(rate), "--visitors", "50", "--retry-seconds", "300", "--record", record, "--json"] + extra,
                environment: f.environment, captureOutput: true, stderrPath: f.directory + "/load.log")
            try await Task.sleep(for: faultAfter)
            try await fault(sites)
            var sent = ""
            while let line = await generator.readLine(timeout: .seconds(600)) { sent += line }
            await generator.wait()
            if !expectRefusals { #expect(generator.exitCode == 0, "\(sent)") }
            let (verified, code) = try await EndToEndTests.load(f, [
                "verify", record, "--sink-ids", "http://127.0.0.1:\(f.standInPort)/_received/\(f.sinkName)/ids",
                "--sink-id", String(f.sinkID), "--wait", "300", "--json"])
            #expect(code == 0, "\(verified)")
            let stages = (try? JSONSerialization.jsonObject(with: Data(verified.utf8)) as? [String: Any])?["stages"] as? [[String: Any]] ?? []
            #expect(stages.count == 4)
            for stage in stages {
                #expect(stage["lost"] as? Int == 0 && stage["duplicated"] as? Int == 0 && stage["miscounted"] as? Int == 0, "\(stage)")
            }
        }

        /// Every incident the fault opened is resolved again.
        static func allResolved(_ f: HealthFixture) async throws {
            let resolved = await eventually(timeout: .seconds(60)) {
                let rows = try? await f.admin.query("SELECT count(*) AS n FROM health.incidents WHERE resolved_at IS NULL").rows
                return (try? rows?.first?.int("n")) == 0
            }
            let open = try await f.admin.query("SELECT check_name FROM health.incidents WHERE resolved_at IS NULL").rows
                .compactMap { try $0.string("check_name") }
            #expect(resolved, "still open: \(open)")
        }

        @Test("kill -9 of a daemon under load, restarted a few seconds later", arguments: ["collector", "hydration", "aggregator", "forwarder"])
        func killed(daemon: String) async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.underLoad(f) { _ in
                    await f.kill9(daemon)
                    let paged = await eventually(timeout: .seconds(20)) {
                        (try? await f.pagerDutyEvents("heartbeat:\(daemon)").isEmpty) == false
                    }
                    #expect(paged, "no alert for the killed \(daemon)")
                    try await f.start(daemon)
                }
                // The resolve follows the recovery (after resolveAfter passes, longer if the check flapped).
                let resolved = await eventually(timeout: .seconds(60)) {
                    (try? await f.pagerDutyEvents("heartbeat:\(daemon)").last?.action) == "resolve"
                }
                let events = (try? await f.pagerDutyEvents("heartbeat:\(daemon)")) ?? []
                #expect(resolved, "heartbeat:\(daemon) was not resolved: \(events)")
                try await Self.allResolved(f)
            }
        }

        @Test("maintenance on under load: workers finish what they hold and pause, the collector keeps accepting; off: all drains")
        func maintenance() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                func count(_ table: String) async throws -> Int64 {
                    try await f.admin.query("SELECT count(*) AS n FROM \(table)").rows.first?.int("n") ?? 0
                }
                try await Self.underLoad(f, events: 6000) { _ in
                    _ = try await f.json("health-checker", ["maintenance", "on", "--reason", "fault test"])
                    let paused = await eventually(timeout: .seconds(15)) {
                        guard let status = try? await f.json("health-checker", ["maintenance", "status"]),
                              let instances = status["instances"] as? [[String: Any]], instances.count == 3 else { return false }
                        return instances.allSatisfy { ($0["live"] as? Int ?? 0) > 0 && $0["paused"] as? Int == $0["live"] as? Int }
                    }
                    #expect(paused, "not every worker reported being paused")
                    // A batch in hand may still commit just after the heartbeat said paused.
                    try await Task.sleep(for: .seconds(1))
                    let tables = ["collector.raw_batches", "hydration.ledger", "aggregator.ledger", "forwarder.deliveries"]
                    var before: [Int64] = []
                    for t in tables { before.append(try await count(t)) }
                    try await Task.sleep(for: .seconds(4))
                    var after: [Int64] = []
                    for t in tables { after.append(try await count(t)) }
                    #expect(after[0] > before[0], "the collector stopped accepting during maintenance")
                    #expect(Array(after[1...]) == Array(before[1...]), "workers kept working during maintenance: \(before) → \(after)")
                    _ = try await f.json("health-checker", ["maintenance", "off"])
                }
                try await Self.allResolved(f)
            }
        }

        @Test("two instances of every worker at once under load")
        func twoOfEach() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.underLoad(f) { _ in
                    for daemon in ["hydration", "aggregator", "forwarder"] { try await f.startAnother(daemon) }
                }
                try await Self.allResolved(f)
            }
        }

        @Test("Redis restarted under load")
        func redisRestart() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.underLoad(f) { _ in try await f.env.restartDisruptRedis() }
                try await Self.allResolved(f)
            }
        }

        @Test("PostgreSQL stopped while clients send: acknowledged from the spool, one grouped page, resolved")
        func postgresStopped() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let outage = min(f.env.outageSeconds, 60)
                try await Self.underLoad(f, events: 400 * (outage + 8)) { _ in
                    try await f.env.stopDisruptPostgres()
                    do { try await Task.sleep(for: .seconds(outage)) } catch {}
                    try await f.env.startDisruptPostgres()
                }
                #expect(try await f.pagerDutyEvents("postgres").last?.action == "resolve")
                try await Self.allResolved(f)
            }
        }

        @Test("chaos, short: random kills of random daemons and restarts of Redis and PostgreSQL under load")
        func chaos() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let rounds = Int(ProcessInfo.processInfo.environment["TRIBUTARY_TEST_CHAOS_ROUNDS"] ?? "") ?? 6
                var rng = SystemRandomNumberGenerator()
                var log: [String] = []
                try await Self.underLoad(f, events: 400 * (rounds * 6 + 6)) { _ in
                    for round in 1...rounds {
                        try await Task.sleep(for: .milliseconds(Int.random(in: 1000...4000, using: &rng)))
                        switch Int.random(in: 0..<6, using: &rng) {
                        case 0..<4:
                            let daemon = ["collector", "hydration", "aggregator", "forwarder"].randomElement(using: &rng)!
                            log.append("round \(round): kill -9 \(daemon)")
                            await f.kill9(daemon)
                            try await Task.sleep(for: .milliseconds(Int.random(in: 200...2500, using: &rng)))
                            try await f.start(daemon)
                        case 4:
                            log.append("round \(round): restart Redis")
                            try await f.env.restartDisruptRedis()
                        default:
                            log.append("round \(round): restart PostgreSQL")
                            try await f.env.restartDisruptPostgres()
                        }
                    }
                }
                print("chaos: " + log.joined(separator: "; "))
                try await Self.allResolved(f)
            }
        }

        @Test("a sink down for minutes under load, then back: every event delivered once; the sink's delivery check paged and resolved")
        func sinkDown() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let outage = Int(ProcessInfo.processInfo.environment["TRIBUTARY_TEST_SINK_OUTAGE_SECONDS"] ?? "") ?? 300
                try await Self.underLoad(f) { _ in
                    try await f.control(f.sinkName, ["down": true, "status": 503])
                    let paged = await eventually(timeout: .seconds(60)) {
                        (try? await f.pagerDutyEvents("delivery:\(f.sinkID)").contains { $0.action == "trigger" }) == true
                    }
                    #expect(paged, "no delivery alert while the sink was down")
                    try await Task.sleep(for: .seconds(max(outage - 60, 1)))
                    try await f.control(f.sinkName, ["down": false])
                }
                #expect(try await f.admin.query("SELECT count(*) AS n FROM forwarder.dead_letters").rows.first?.int("n") == 0)
                try await Self.allResolved(f)
                #expect(try await f.pagerDutyEvents("delivery:\(f.sinkID)").last?.action == "resolve")
            }
        }

        @Test("a sink that stalls past its timeout under load: another sink of the same events is not slowed; nothing lost")
        func sinkStalls() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let other = TestEnvironment.uniqueLetters("other")
                try "whsec_b3RoZXJzZWNyZXRvdGhlcnNlY3JldA==".write(toFile: f.directory + "/" + other, atomically: true, encoding: .utf8)
                var otherID: Int64 = 0
                try await Self.underLoad(f) { sites in
                    // A second sink of the same sites, which answers at once.
                    let added = try await f.json("forwarder", ["sinks", "add", other, "--type", "webhook",
                        "--url", "http://127.0.0.1:\(f.standInPort)/webhook/\(other)", "--secret-file", f.directory + "/" + other,
                        "--allow-private-network", "--timeout-ms", "2000"] + sites.flatMap { ["--site", "\($0["siteId"]!)"] })
                    otherID = (added["sinkId"] as? NSNumber)?.int64Value ?? 0
                    _ = try await f.json("forwarder", ["sinks", "update", f.sinkName, "--timeout-ms", "2000"])
                    try await f.control(f.sinkName, ["stall": 5])
                    // While the first sink stalls, the second one keeps up with everything routed to it.
                    // The canary goes through every second, so the totals are rarely equal at one
                    // instant: what was routed up to a moment must be delivered soon after it.
                    try await Task.sleep(for: .seconds(12))
                    let moment = try await f.admin.query("SELECT now()::text AS t").rows.first?.string("t") ?? ""
                    let caughtUp = await eventually(timeout: .seconds(30)) {
                        guard let gaps = try? await Self.undelivered(f, sink: otherID, routedBy: moment) else { return false }
                        return gaps.isEmpty
                    }
                    let gaps = (try? await Self.undelivered(f, sink: otherID, routedBy: moment)) ?? ["(could not be read)"]
                    #expect(caughtUp, "the second sink fell behind while the first one stalled: \(gaps)")
                    #expect(try await f.admin.query(
                        "SELECT count(*) AS n FROM forwarder.deliveries WHERE sink_id = $1", [otherID]).rows.first?.int("n") ?? 0 > 0)
                    let stalledBehind = try await f.admin.query(
                        "SELECT count(*) AS n FROM forwarder.retries WHERE sink_id = $1", [f.sinkID]).rows.first?.int("n") ?? 0
                    #expect(stalledBehind > 0, "the stalled sink had nothing waiting: the stall did not bite")
                    try await Task.sleep(for: .seconds(10))
                    try await f.control(f.sinkName, ["stall": 0])
                }
                try await Self.allResolved(f)
                let notices = try await f.pagerDutyEvents("delivery:\(f.sinkID)")
                #expect(notices.contains { $0.action == "trigger" } && notices.last?.action == "resolve", "\(notices)")
                _ = try await f.json("forwarder", ["sinks", "disable", other])
            }
        }

        /// The batches routed to `sink` that hydration applied by `moment` (PostgreSQL's clock)
        /// and whose events are not all delivered: each with its counts and where its queue
        /// stands, to say where the rest waits.
        static func undelivered(_ f: HealthFixture, sink: Int64, routedBy moment: String) async throws -> [String] {
            let rows = try await f.admin.query("""
                SELECT l.site_id, l.batch_id, l.applied_at::text AS applied_at, (l.routed->>$1)::bigint AS routed,
                       (SELECT count(*) FROM hydration.events e JOIN forwarder.deliveries d
                          ON d.site_id = e.site_id AND d.sink_id = $2 AND d.event_id = e.event_id
                        WHERE \(HydrationLedgerSQL.events)) AS delivered
                FROM hydration.ledger l
                WHERE (l.routed->>$1)::bigint > 0 AND l.applied_at <= $3::timestamptz
                """, ["forward:\(sink)", sink, moment]).rows
            var gaps: [String] = []
            for row in rows where try row.int("routed") != row.int("delivered") {
                gaps.append("batch \(try row.int("batch_id") ?? 0) of site \(try row.int("site_id") ?? 0) applied \(try row.string("applied_at") ?? ""): "
                            + "\(try row.int("delivered") ?? 0) of \(try row.int("routed") ?? 0) delivered")
            }
            guard !gaps.isEmpty else { return [] }
            let keys = QueueKeys(name: QueueName.forward(sinkID: sink))
            var queue = "queue depth \(try await f.redis.send("GET", keys.depth))"
            if case .array(let names) = try await f.redis.send("KEYS", keys.inflightPrefix + "*") {
                for case .bulk(let name) in names {
                    let key = String(decoding: name, as: UTF8.self)
                    queue += ", \(key) holds \(try await f.redis.send("LLEN", key))"
                }
            }
            let retries = try await f.admin.query(
                "SELECT count(*) AS n FROM forwarder.retries WHERE sink_id = $1", [sink]).rows.first?.int("n") ?? 0
            return gaps + [queue, "\(retries) retries parked"]
        }

        @Test("one site sending 100× the others as fast as it can: the small sites' receipt → aggregated lag stays within seconds")
        func floodingSite() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                var small: [Int64] = []
                try await Self.underLoad(f, events: 12_000, rate: 0, weights: [100, 1, 1]) { sites in
                    small = sites.dropFirst().compactMap { ($0["siteId"] as? NSNumber)?.int64Value }
                }
                let rows = try await f.admin.query("""
                    SELECT r.site_id, count(*) AS batches,
                           max(extract(epoch FROM a.applied_at - r.received_at))::float8 AS max_lag,
                           (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.applied_at - r.received_at)))::float8 AS p50
                    FROM collector.raw_batches r JOIN aggregator.ledger a USING (site_id, batch_id)
                    WHERE r.site_id = ANY($1::bigint[]) GROUP BY r.site_id
                    """, ["{" + ([f.site.id] + small).map(String.init).joined(separator: ",") + "}"]).rows
                var lags: [Int64: (batches: Int64, max: Double, p50: Double)] = [:]
                for row in rows {
                    lags[try row.int("site_id") ?? 0] = (try row.int("batches") ?? 0, try row.double("max_lag") ?? 0, try row.double("p50") ?? 0)
                }
                print("flooding site: " + ([f.site.id] + small).map { site in
                    let l = lags[site]
                    return "site \(site): \(l?.batches ?? 0) batches, receipt → aggregated p50 \(String(format: "%.2f", l?.p50 ?? 0)) s, "
                        + "max \(String(format: "%.2f", l?.max ?? 0)) s"
                }.joined(separator: "; "))
                #expect((lags[f.site.id]?.batches ?? 0) > 50 * small.map { lags[$0]?.batches ?? 0 }.max()! / 2, "the big site did not send ~100×")
                for site in small {
                    let lag = try #require(lags[site], "site \(site) has no aggregated batch")
                    #expect(lag.max < 15, "small site \(site) waited \(lag.max) s behind the flooding one")
                }
                try await Self.allResolved(f)
            }
        }

        @Test("fuzzed, oversized and malformed requests mixed into the load: each gets its 4xx, nothing else is affected")
        func malformed() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.underLoad(f, extra: ["--malformed", "0.3"]) { _ in }
                try await Self.allResolved(f)
            }
        }

        @Test("a write key revoked mid-stream: 401 from then on, everything acknowledged before ties")
        func keyRevoked() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                try await Self.underLoad(f, expectRefusals: true) { sites in
                    let victim = "\(sites[1]["siteId"]!)"
                    _ = try await f.json("collector", ["sites", "revoke-key", victim, "--all"])
                }
                try await Self.allResolved(f)
            }
        }
    }
}
