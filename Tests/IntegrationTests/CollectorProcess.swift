import Foundation
import TributaryHTTP
import TributaryPostgres
import TributaryRedis
import TributaryTesting

/// A real `collector` process for a test: its own ports, spool folder and Redis
/// database (so its `hydrate` queue is its own), against the test servers.
final class CollectorProcess: @unchecked Sendable {
    let env: TestEnvironment
    let port: Int
    let adminPort: Int
    let redisDatabase: Int
    let spoolDirectory: String
    let disrupt: Bool
    let extraEnvironment: [String: String]
    private(set) var process: ChildProcess?
    let pool = TestThreadPool(threads: 6)
    let http: HTTPClient
    let redis: RedisConnection
    let db: PostgresClient

    init(env: TestEnvironment, redisDatabase: Int, disrupt: Bool = false, environment: [String: String] = [:]) {
        self.env = env
        self.port = freeLoopbackPort()
        self.adminPort = freeLoopbackPort()
        self.redisDatabase = redisDatabase
        self.disrupt = disrupt
        self.spoolDirectory = env.directory + "/" + TestEnvironment.uniqueName("spool")
        self.extraEnvironment = environment
        http = HTTPClient(threadPool: pool.pool)
        var redisConfiguration = env.redis(disrupt: disrupt)
        redisConfiguration.database = redisDatabase
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        db = PostgresClient(configuration: env.postgres(disrupt: disrupt), maximumConnections: 2, threadPool: pool.pool)
    }

    var environment: [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["TRIBUTARY_CONFIG"] = nil
        e["TRIBUTARY_POSTGRES_PORT"] = String(disrupt ? env.disruptPGPort : env.pgPort)
        e["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(disrupt ? env.disruptRedisPort : env.redisPort)/\(redisDatabase)"
        e["TRIBUTARY_COLLECTOR_LISTEN_PORT"] = String(port)
        e["TRIBUTARY_COLLECTOR_ADMIN_PORT"] = String(adminPort)
        e["TRIBUTARY_COLLECTOR_SPOOL_DIRECTORY"] = spoolDirectory
        e["TRIBUTARY_COLLECTOR_SITES_REFRESH_SECONDS"] = "0.2"
        e["TRIBUTARY_COLLECTOR_OUTBOX_SCAN_SECONDS"] = "0.5"
        e["TRIBUTARY_COLLECTOR_OUTBOX_GRACE_SECONDS"] = "1"
        e["TRIBUTARY_SHUTDOWN_GRACE_PERIOD_SECONDS"] = "10"
        for (k, v) in extraEnvironment { e[k] = v }
        return e
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Starts the collector and waits for `/readyz`.
    func start() async throws {
        if process == nil { _ = try await redis.send("FLUSHDB") }
        process = try ChildProcess(env.binDirectory + "/collector", ["run"], environment: environment,
                                   stderrPath: spoolDirectory + ".log")
        let ready = await eventually(timeout: .seconds(30)) {
            (try? await self.http.send(HTTPClientRequest(url: self.baseURL + "/readyz", timeoutMs: 500)))?.status == 200
        }
        guard ready else { throw TestEnvironmentError(description: "collector did not become ready; see \(spoolDirectory).log") }
    }

    /// Stops it with SIGTERM and waits.
    func stop() async {
        process?.send(SIGTERM)
        await process?.wait()
    }

    /// Runs `collector <arguments>` (e.g. `sites add x --json`) and returns its output.
    func command(_ arguments: [String]) async throws -> String {
        let child = try ChildProcess(env.binDirectory + "/collector", arguments, environment: environment,
                                     captureOutput: true)
        var text = ""
        while let line = await child.readLine(timeout: .seconds(20)) { text += line + "\n" }
        await child.wait()
        guard child.exitCode == 0 else { throw TestEnvironmentError(description: "collector \(arguments) failed: \(text)") }
        return text
    }

    /// Adds a site through the CLI; returns its id and write key.
    func addSite(_ name: String = TestEnvironment.uniqueName("site"), extra: [String] = []) async throws -> (id: Int64, key: String) {
        let json = try await command(["sites", "add", name, "--json"] + extra)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        guard let id = (object?["siteId"] as? NSNumber)?.int64Value, let key = object?["writeKey"] as? String else {
            throw TestEnvironmentError(description: "unexpected output: \(json)")
        }
        // The running collector picks new sites up within collector.sites.refreshSeconds (0.2 s here).
        if process != nil { try await Task.sleep(for: .seconds(1)) }
        return (id, key)
    }

    /// Sends a request to the collector.
    func send(_ path: String, method: String = "POST", key: String? = nil, body: [UInt8] = [],
              headers: [(name: String, value: String)] = [("Content-Type", "application/json")]) async throws -> HTTPClientResponse {
        var all = headers
        if let key { all.append(("Authorization", "Basic " + Data("\(key):".utf8).base64EncodedString())) }
        return try await http.send(HTTPClientRequest(method: method, url: baseURL + path, headers: all, body: body))
    }

    func send(_ path: String, key: String? = nil, json: String,
              headers: [(name: String, value: String)] = [("Content-Type", "application/json")]) async throws -> HTTPClientResponse {
        try await send(path, key: key, body: Array(json.utf8), headers: headers)
    }

    /// The raw batches saved for a site: batch id → (event count, payload).
    func rawBatches(site: Int64) async throws -> [Int64: (Int64, String)] {
        let rows = try await db.query(
            "SELECT batch_id, event_count, payload FROM collector.raw_batches WHERE site_id = $1", [site]).rows
        var result: [Int64: (Int64, String)] = [:]
        for row in rows { result[try row.int("batch_id")!] = (try row.int("event_count")!, try row.string("payload")!) }
        return result
    }

    /// The batch ids waiting in the `hydrate` queue for a site, in queue order (oldest first).
    func queuedBatchIDs(site: Int64) async throws -> [Int64] {
        let items = try await redis.send("LRANGE", "{hydrate}:site:\(site)", 0, -1).array ?? []
        return items.reversed().compactMap { item in
            guard let bytes = item.bytes,
                  let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
            return (object["batchId"] as? NSNumber)?.int64Value
        }
    }
}

extension HTTPClientResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
    }

    var errorCode: String? {
        (json["error"] as? [String: Any])?["code"] as? String
    }

    var batchID: Int64? {
        (json["batchId"] as? String).flatMap { Int64($0) }
    }
}
