import Foundation
import Synchronization
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Forwarder

/// A real `forwarder` process and the local sink stand-ins (Tests/Fixtures/sink_server.py),
/// on their own Redis database, with short retry and breaker timings.
final class ForwarderFixture: @unchecked Sendable {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)
    let http: HTTPClient
    let redis: RedisConnection
    let db: PostgresClient
    let adminPort = freeLoopbackPort()
    let sinkPort = freeLoopbackPort()
    let udpPort = freeLoopbackPort()
    let directory: String
    let redisDatabase: Int
    private(set) var process: ChildProcess?
    private var sinkServer: ChildProcess?
    private var sinks: [String] = []
    private var others: [ChildProcess] = []
    private let stopped = Mutex(false)

    init(redisDatabase: Int = 15) async throws {
        self.redisDatabase = redisDatabase
        env = try TestEnvironment.current()
        http = HTTPClient(threadPool: pool.pool)
        var redisConfiguration = env.redis()
        redisConfiguration.database = redisDatabase
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        db = PostgresClient(configuration: env.postgres(role: "tributary_forwarder"), maximumConnections: 2, threadPool: pool.pool)
        directory = env.directory + "/" + TestEnvironment.uniqueName("forwarder")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = try await db.withConnection { try await ForwarderSchema.migrator.migrate(using: $0) }
        _ = try await redis.send("FLUSHDB")
        sinkServer = try ChildProcess(env.python, [env.fixtures + "/sink_server.py", String(sinkPort), String(udpPort), directory],
                                      captureOutput: true, stderrPath: directory + "/sinks.log")
        guard await sinkServer?.readLine(timeout: .seconds(20)) == "ready" else {
            throw TestEnvironmentError(description: "sink server did not start; see \(directory)/sinks.log")
        }
    }

    var environment: [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["TRIBUTARY_CONFIG"] = nil
        e["TRIBUTARY_POSTGRES_PORT"] = String(env.pgPort)
        e["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(env.redisPort)/\(redisDatabase)"
        e["TRIBUTARY_FORWARDER_ADMIN_PORT"] = String(adminPort)
        e["TRIBUTARY_FORWARDER_SINKS_REFRESH_SECONDS"] = "0.2"
        e["TRIBUTARY_FORWARDER_RETRY_BASE_SECONDS"] = "0.2"
        e["TRIBUTARY_FORWARDER_RETRY_MAX_DELAY_SECONDS"] = "1"
        e["TRIBUTARY_FORWARDER_RETRY_POLL_SECONDS"] = "0.2"
        e["TRIBUTARY_FORWARDER_BREAKER_FAILURES"] = "3"
        e["TRIBUTARY_FORWARDER_BREAKER_OPEN_SECONDS"] = "1"
        e["TRIBUTARY_FORWARDER_BREAKER_MAX_OPEN_SECONDS"] = "2"
        e["TRIBUTARY_QUEUE_RECOVER_INTERVAL_SECONDS"] = "1"
        e["TRIBUTARY_QUEUE_LEASE_SECONDS"] = "3"
        e["TRIBUTARY_SHUTDOWN_GRACE_PERIOD_SECONDS"] = "10"
        return e
    }

    /// Starts the forwarder and waits for `/readyz`.
    func start() async throws {
        process = try ChildProcess(env.binDirectory + "/forwarder", ["run"], environment: environment,
                                   stderrPath: directory + "/forwarder.log")
        let ready = await eventually(timeout: .seconds(30)) {
            (try? await self.http.send(HTTPClientRequest(url: "http://127.0.0.1:\(self.adminPort)/readyz", timeoutMs: 500)))?.status == 200
        }
        guard ready else { throw TestEnvironmentError(description: "forwarder did not become ready; see \(directory)/forwarder.log") }
    }

    /// Starts one more forwarder instance (its own admin port) against the same servers.
    func startAnother() async throws -> ChildProcess {
        var e = environment
        e["TRIBUTARY_FORWARDER_ADMIN_PORT"] = String(freeLoopbackPort())
        let child = try ChildProcess(env.binDirectory + "/forwarder", ["run"], environment: e,
                                     stderrPath: directory + "/forwarder-2.log")
        others.append(child)
        return child
    }

    func kill9() async {
        process?.send(SIGKILL)
        await process?.wait()
    }

    /// Runs a test's body, then stops everything this fixture started, also when the body
    /// throws: child processes must not outlive the test.
    func stopping(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    /// Stops the forwarder and the stand-ins, and disables this fixture's sinks (so later
    /// forwarders in the same database do not deliver to them).
    func stop() async {
        guard stopped.withLock({ (s: inout Bool) -> Bool in defer { s = true }; return !s }) else { return }
        for other in others {
            other.send(SIGTERM)
            await other.wait()
        }
        _ = try? await db.query("UPDATE forwarder.sinks SET disabled_at = now() WHERE name = ANY($1::text[])",
                                [PostgresArray.text(sinks)])
        process?.send(SIGTERM)
        await process?.wait()
        // SIGKILL: the stand-ins keep nothing, and a child spawned from the test runner may
        // inherit a signal mask that blocks SIGTERM.
        sinkServer?.send(SIGKILL)
        await sinkServer?.wait()
    }

    /// Runs `forwarder <arguments>`; returns its output and exit code.
    func command(_ arguments: [String]) async throws -> (output: String, code: Int32) {
        let child = try ChildProcess(env.binDirectory + "/forwarder", arguments, environment: environment,
                                     captureOutput: true, stderrPath: directory + "/commands.log")
        var text = ""
        while let line = await child.readLine(timeout: .seconds(20)) { text += line + "\n" }
        await child.wait()
        return (text, child.exitCode ?? -1)
    }

    func json(_ arguments: [String]) async throws -> Any {
        let (text, code) = try await command(arguments + ["--json"])
        guard code == 0 else { throw TestEnvironmentError(description: "forwarder \(arguments) failed: \(text)") }
        return try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// Adds a sink through the CLI, pointed at the stand-in of its type; returns its id.
    func addSink(_ type: String, _ name: String = TestEnvironment.uniqueLetters("sink"), extra: [String] = []) async throws -> (id: Int64, name: String) {
        let secret = type == "webhook" ? "whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            : "secret-\(name)"
        try secret.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        let url = type == "statsd" ? "udp://127.0.0.1:\(udpPort)" : "http://127.0.0.1:\(sinkPort)/\(type)/\(name)"
        // Only site 1 (the site ``push`` uses): other suites' hydration tests are not routed to these sinks.
        var arguments = ["sinks", "add", name, "--type", type, "--url", url, "--allow-private-network", "--site", "1"]
        if type != "statsd" { arguments += ["--secret-file", directory + "/" + name] }
        let object = try await json(arguments + extra) as? [String: Any]
        guard let id = (object?["sinkId"] as? NSNumber)?.int64Value else { throw TestEnvironmentError(description: "no sink id") }
        sinks.append(name)
        return (id, name)
    }

    /// Tells the stand-in how to answer `name`'s next requests.
    func control(_ name: String, _ settings: [String: Any]) async throws {
        _ = try await http.send(HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(sinkPort)/_control/\(name)",
                                                  body: Array(try JSONSerialization.data(withJSONObject: settings))))
    }

    /// What the stand-in received for `name`.
    func received(_ name: String) async throws -> [String: Any] {
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(sinkPort)/_received/\(name)",
                                                             timeoutMs: 60_000, maximumResponseBytes: 1 << 30))
        return (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    /// Counts only (cheap to poll): requests, events, unique message ids, bad signatures.
    func summary(_ name: String) async throws -> (requests: Int, events: Int, unique: Int) {
        let response = try await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(sinkPort)/_received/\(name)/summary"))
        let o = (try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        return (o["requests"] as? Int ?? 0, o["events"] as? Int ?? 0, o["unique"] as? Int ?? 0)
    }

    func receivedEvents(_ name: String) async throws -> [[String: Any]] {
        (try await received(name)["events"] as? [[String: Any]]) ?? []
    }

    /// Event ids unique across the test run, as hydration's are (random ids could collide,
    /// and the forwarder rightly skips an event id it already delivered).
    private static let eventIDs = Mutex(Int64.random(in: 1...1_000_000) * 1_000_000_000)
    static func nextEventID() -> Int64 { eventIDs.withLock { $0 += 1; return $0 } }

    /// Pushes `count` hydrated events of `site` to the sink's queue, `perItem` per item; returns their message ids.
    @discardableResult
    func push(sink: Int64, site: Int64 = 1, count: Int, perItem: Int = 50, type: EventType = .track,
              prefix: String = TestEnvironment.uniqueLetters("m"), properties: [String: JSONValue]? = nil) async throws -> [String] {
        var ids: [String] = []
        var start = 0
        while start < count {
            let n = min(perItem, count - start)
            let events = (start..<start + n).map { i -> HydratedEvent in
                var e = HydratedEvent(eventID: Self.nextEventID(), messageID: "\(prefix)-\(i)", type: type,
                                      timestamp: Date(timeIntervalSince1970: 1_790_000_000 + Double(i)), receivedAt: Date(),
                                      visitorHash: "v\(i % 7)")
                e.name = type == .metric ? "api.latency" : "Signed Up"
                e.userID = "user-\(i % 5)"
                e.properties = properties
                if type == .metric { e.metric = .init(kind: .timer, value: Double(i), tags: ["route": "/x"]) }
                return e
            }
            ids += events.map(\.messageID)
            let message = HydratedBatchMessage(batchID: Int64(start), siteID: site, sinkID: sink, events: events)
            try await ReliableQueue(name: QueueName.forward(sinkID: sink), connection: redis).push(message.serialized(), site: String(site))
            start += n
        }
        return ids
    }

    func count(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> Int {
        Int(try await db.query(sql, parameters).first?.int("n") ?? 0)
    }
}
