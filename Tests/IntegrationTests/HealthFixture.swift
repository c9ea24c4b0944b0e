import Foundation
import Synchronization
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting

/// The whole pipeline as real processes (collector, hydration, aggregator, forwarder and
/// health-checker) on the disruptable PostgreSQL and Redis servers, with one config file
/// of short timings, and the local receiver stand-ins (Tests/Fixtures/sink_server.py:
/// /slack, /pagerduty, /alerts, /webhook).
final class HealthFixture: @unchecked Sendable {
    static let daemons = ["collector", "hydration", "aggregator", "forwarder", "health-checker"]

    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)
    let http: HTTPClient
    let redis: RedisConnection
    let admin: PostgresClient
    let directory: String
    let standInPort = freeLoopbackPort()
    let udpPort = freeLoopbackPort()
    let collectorPort = freeLoopbackPort()
    let statusPort = freeLoopbackPort()
    let adminPorts: [String: Int]
    let redisDatabase = 6
    private(set) var processes: [String: ChildProcess] = [:]
    private var standIn: ChildProcess?
    private let stopped = Mutex(false)
    private(set) var site: (id: Int64, key: String) = (0, "")
    private(set) var sinkID: Int64 = 0

    /// Receiver names at the stand-in.
    let slack = TestEnvironment.uniqueLetters("slack")
    let pagerDuty = TestEnvironment.uniqueLetters("pd")
    let webhook = TestEnvironment.uniqueLetters("hook")
    let sinkName = TestEnvironment.uniqueLetters("sink")
    let deadMansSwitch = TestEnvironment.uniqueLetters("dms")
    /// The health-checker's admin token (`/trace` over HTTP).
    let adminToken = TestEnvironment.uniqueLetters("admintoken") + "0123456789abcdef"

    init() async throws {
        env = try TestEnvironment.current()
        http = HTTPClient(threadPool: pool.pool)
        var redisConfiguration = env.redis(disrupt: true)
        redisConfiguration.database = redisDatabase
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        admin = PostgresClient(configuration: env.postgres(disrupt: true), maximumConnections: 2, threadPool: pool.pool)
        directory = env.directory + "/" + TestEnvironment.uniqueName("health")
        var ports: [String: Int] = [:]
        for daemon in Self.daemons { ports[daemon] = freeLoopbackPort() }
        adminPorts = ports
        try FileManager.default.createDirectory(atPath: directory + "/spool", withIntermediateDirectories: true)
        _ = try await redis.send("FLUSHDB")
        try adminToken.write(toFile: directory + "/admin-token", atomically: true, encoding: .utf8)
        try writeConfig()
        for daemon in Self.daemons {
            let (output, code) = try await command(daemon, ["migrate"])
            guard code == 0 else { throw TestEnvironmentError(description: "\(daemon) migrate failed: \(output)") }
        }
        // The disruptable database is shared by the serial outage suites: start from empty
        // pipeline tables so numbers left by another suite do not tie into this one.
        try await admin.query("""
            TRUNCATE collector.raw_batches, collector.outbox, hydration.ledger, hydration.events, hydration.message_ids,
                     hydration.failed_events, aggregator.ledger, forwarder.deliveries, forwarder.retries,
                     forwarder.dead_letters, forwarder.attempts, health.incidents, health.notifications, health.canaries,
                     health.receivers
            """)
        try await admin.query("UPDATE forwarder.sinks SET disabled_at = now() WHERE disabled_at IS NULL")
        standIn = try ChildProcess(env.python, [env.fixtures + "/sink_server.py", String(standInPort), String(udpPort), directory],
                                   captureOutput: true, stderrPath: directory + "/stand-in.log")
        guard await standIn?.readLine(timeout: .seconds(20)) == "ready" else {
            throw TestEnvironmentError(description: "stand-in did not start; see \(directory)/stand-in.log")
        }
        let added = try await json("collector", ["sites", "add", TestEnvironment.uniqueName("health-site")])
        site = ((added["siteId"] as? NSNumber)?.int64Value ?? 0, added["writeKey"] as? String ?? "")
        try site.key.write(toFile: directory + "/canary-key", atomically: true, encoding: .utf8)
        let secret = "whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try secret.write(toFile: directory + "/" + sinkName, atomically: true, encoding: .utf8)
        let sink = try await json("forwarder", ["sinks", "add", sinkName, "--type", "webhook",
                                                "--url", "http://127.0.0.1:\(standInPort)/webhook/\(sinkName)",
                                                "--secret-file", directory + "/" + sinkName, "--allow-private-network",
                                                "--site", String(site.id), "--batch-size", "1", "--concurrency", "1"])
        sinkID = (sink["sinkId"] as? NSNumber)?.int64Value ?? 0
        try "pd-routing-key-\(pagerDuty)".write(toFile: directory + "/" + pagerDuty, atomically: true, encoding: .utf8)
        for (name, type) in [(slack, "slack"), (pagerDuty, "pagerduty"), (webhook, "webhook")] {
            let path = type == "webhook" ? "alerts" : type
            var arguments = ["receivers", "add", name, "--type", type, "--url", "http://127.0.0.1:\(standInPort)/\(path)/\(name)",
                             "--allow-private-network"]
            if type == "pagerduty" { arguments += ["--routing-key-file", directory + "/" + pagerDuty] }
            _ = try await json("health-checker", arguments)
        }
    }

    private func writeConfig() throws {
        let config: [String: Any] = [
            "redis": ["url": "redis://127.0.0.1:\(env.disruptRedisPort)/\(redisDatabase)", "socketTimeoutMs": 3000],
            "postgres": ["host": "127.0.0.1", "port": env.disruptPGPort, "database": "tributary", "statementTimeoutMs": 10_000],
            // A TTL of 2 s once let the health-checker's own heartbeat lapse on a loaded 2-core
            // CI machine during the stall test, and page; 3 s still expires well inside every wait.
            "heartbeat": ["intervalSeconds": 0.3, "ttlSeconds": 3],
            "queue": ["leaseSeconds": 3, "recoverIntervalSeconds": 1, "idleWaitSeconds": 0.2],
            "shutdown": ["gracePeriodSeconds": 5],
            "log": ["level": "info", "format": "text"],
            "collector": ["listen": ["port": collectorPort], "admin": ["port": adminPorts["collector"]!],
                          "spool": ["directory": directory + "/spool"], "sites": ["refreshSeconds": 0.2]],
            "hydration": ["admin": ["port": adminPorts["hydration"]!], "geoip": ["database": env.geoDatabase],
                          "sinks": ["refreshSeconds": 0.2], "concurrency": 1],
            "aggregator": ["admin": ["port": adminPorts["aggregator"]!], "stats": ["port": freeLoopbackPort()],
                           "sites": ["refreshSeconds": 0.5], "concurrency": 1],
            "forwarder": ["admin": ["port": adminPorts["forwarder"]!], "sinks": ["refreshSeconds": 0.2],
                          "retry": ["baseSeconds": 0.2, "maxDelaySeconds": 1, "pollSeconds": 0.2],
                          "breaker": ["failures": 1000, "openSeconds": 1, "maxOpenSeconds": 2]],
            "healthChecker": [
                "admin": ["port": adminPorts["health-checker"]!], "status": ["port": statusPort],
                "adminTokenFile": directory + "/admin-token",
                "checkIntervalSeconds": 0.5, "escalateAfter": 3, "resolveAfter": 2, "startupGraceSeconds": 0,
                "recoveryGraceSeconds": 10, "stallSeconds": 4, "anomalyWindowSeconds": 30,
                "inflight": ["graceSeconds": 4], "delivery": ["maxRetryAgeSeconds": 10], "backlog": ["maxDepth": 40, "maxAgeSeconds": 120],
                "tie": ["graceSeconds": 2, "intervalSeconds": 0.5, "windowHours": 1, "rescanMinutes": 0.05],
                "canary": ["writeKeyFiles": [directory + "/canary-key"], "intervalSeconds": 1, "timeoutSeconds": 20,
                           "maxLagSeconds": 30],
                "notify": ["timeoutMs": 3000],
                "deadMansSwitch": ["url": "http://127.0.0.1:\(standInPort)/ping/\(deadMansSwitch)", "intervalSeconds": 1],
            ],
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: directory + "/config.json"))
    }

    var environment: [String: String] {
        var e = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TRIBUTARY_") || $0.key.hasPrefix("TRIBUTARY_TEST") }
        e["TRIBUTARY_CONFIG"] = directory + "/config.json"
        return e
    }

    /// Starts `daemon` and waits for its `/readyz` (or `/healthz`: running, maybe not ready).
    func start(_ daemon: String, waitFor endpoint: String = "readyz") async throws {
        let child = try ChildProcess(env.binDirectory + "/" + daemon, ["run"], environment: environment,
                                     stderrPath: directory + "/\(daemon).log")
        processes[daemon] = child
        let port = adminPorts[daemon]!
        let ready = await eventually(timeout: .seconds(40)) {
            (try? await self.http.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/\(endpoint)", timeoutMs: 500)))?.status == 200
        }
        guard ready else { throw TestEnvironmentError(description: "\(daemon) did not become ready; see \(directory)/\(daemon).log") }
    }

    /// Starts one more instance of `daemon` (its own admin port); it is stopped with the rest.
    func startAnother(_ daemon: String) async throws {
        let port = freeLoopbackPort()
        var e = environment
        let prefix = daemon == "health-checker" ? "TRIBUTARY_HEALTH_CHECKER" : "TRIBUTARY_" + daemon.uppercased()
        e[prefix + "_ADMIN_PORT"] = String(port)
        if daemon == "aggregator" { e["TRIBUTARY_AGGREGATOR_STATS_PORT"] = String(freeLoopbackPort()) }
        let child = try ChildProcess(env.binDirectory + "/" + daemon, ["run"], environment: e,
                                     stderrPath: directory + "/\(daemon)-2.log")
        processes[daemon + "-2"] = child
        let ready = await eventually(timeout: .seconds(40)) {
            (try? await self.http.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz", timeoutMs: 500)))?.status == 200
        }
        guard ready else { throw TestEnvironmentError(description: "a second \(daemon) did not become ready") }
    }

    func startAll() async throws {
        for daemon in Self.daemons { try await start(daemon) }
    }

    func signal(_ daemon: String, _ signal: Int32) {
        processes[daemon]?.send(signal)
    }

    /// Stops `daemon` gracefully.
    func stopDaemon(_ daemon: String) async {
        processes[daemon]?.send(SIGTERM)
        await processes[daemon]?.wait()
    }

    func kill9(_ daemon: String) async {
        processes[daemon]?.send(SIGKILL)
        await processes[daemon]?.wait()
    }

    /// Runs a test's body, then stops everything, also when the body throws.
    func stopping(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    func stop() async {
        guard stopped.withLock({ (s: inout Bool) -> Bool in defer { s = true }; return !s }) else { return }
        for (_, child) in processes { child.send(SIGCONT) }
        for daemon in Self.daemons.reversed() {
            for name in [daemon + "-2", daemon] {
                processes[name]?.send(SIGTERM)
                await processes[name]?.wait()
            }
        }
        _ = try? await admin.query("UPDATE forwarder.sinks SET disabled_at = now() WHERE disabled_at IS NULL")
        _ = try? await redis.send("DEL", "tributary:maintenance")
        standIn?.send(SIGKILL)
        await standIn?.wait()
    }

    /// Runs `<daemon> <arguments>`; returns its output and exit code.
    func command(_ daemon: String, _ arguments: [String]) async throws -> (output: String, code: Int32) {
        let child = try ChildProcess(env.binDirectory + "/" + daemon, arguments, environment: environment,
                                     captureOutput: true, stderrPath: directory + "/commands.log")
        var text = ""
        while let line = await child.readLine(timeout: .seconds(60)) { text += line + "\n" }
        await child.wait()
        return (text, child.exitCode ?? -1)
    }

    func json(_ daemon: String, _ arguments: [String]) async throws -> [String: Any] {
        let (text, code) = try await command(daemon, arguments + ["--json"])
        guard code == 0, let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TestEnvironmentError(description: "\(daemon) \(arguments) failed (\(code)): \(text)")
        }
        return object
    }

    /// `GET /status`: the HTTP status and the body.
    func status() async throws -> (code: Int, body: [String: Any]) {
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(statusPort)/status", timeoutMs: 3000))
        return (response.status, (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:])
    }

    /// Whether `/status`'s answer now matches docs/health-openapi.yaml (valid OpenAPI itself).
    func statusMatchesOpenAPI() async throws -> (Bool, Int) {
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(statusPort)/status", timeoutMs: 3000))
        let file = directory + "/status-\(UUID().uuidString).json"
        try Data(response.body).write(to: URL(fileURLWithPath: file))
        let root = URL(fileURLWithPath: env.fixtures).deletingLastPathComponent().deletingLastPathComponent().path
        let code = try await runProcess(env.python, [env.fixtures + "/openapi/describe.py", root + "/docs/health-openapi.yaml",
                                                     "--check", "GET", "/status", String(response.status), file],
                                        stderrPath: directory + "/openapi-check.log")
        return (code == 0, response.status)
    }

    /// The status of one check in the last round.
    func check(_ name: String) async throws -> [String: Any]? {
        let checks = try await status().body["checks"] as? [[String: Any]] ?? []
        return checks.first { $0["name"] as? String == name }
    }

    /// What a receiver stand-in got (JSON bodies, oldest first).
    func received(_ name: String) async throws -> [[String: Any]] {
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(standInPort)/_received/\(name)",
                                                             timeoutMs: 10_000, maximumResponseBytes: 1 << 26))
        let o = (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        return (o["events"] as? [[String: Any]]) ?? []
    }

    /// PagerDuty events for `check` (dedup key `tributary:<check>`), as (action, severity).
    func pagerDutyEvents(_ check: String) async throws -> [(action: String, severity: String?)] {
        try await received(pagerDuty).filter { $0["dedup_key"] as? String == "tributary:\(check)" }.map {
            ($0["event_action"] as? String ?? "", ($0["payload"] as? [String: Any])?["severity"] as? String)
        }
    }

    /// Sends `count` track events through the real collector; returns their message ids.
    @discardableResult
    func send(count: Int, name: String = "Signed Up") async throws -> [String] {
        let ids = (0..<count).map { _ in "m-" + UUID().uuidString.lowercased() }
        let batch = ids.map { id in
            ["type": "track", "event": name, "messageId": id, "anonymousId": "anon-1",
             "timestamp": ISO8601.format(Date())] as [String: Any]
        }
        let body = try JSONSerialization.data(withJSONObject: ["batch": batch])
        let auth = Data((site.key + ":").utf8).base64EncodedString()
        let response = try await http.send(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(collectorPort)/v1/batch",
                                                             headers: [("Content-Type", "application/json"),
                                                                       ("Authorization", "Basic \(auth)")],
                                                             body: Array(body)))
        guard response.status == 200 else { throw TestEnvironmentError(description: "collector answered \(response.status)") }
        return ids
    }

    /// Tells the stand-in how to answer `name`'s next requests.
    func control(_ name: String, _ settings: [String: Any]) async throws {
        _ = try await http.send(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(standInPort)/_control/\(name)",
                                                  body: Array(try JSONSerialization.data(withJSONObject: settings))))
    }
}
