import Foundation
import Testing
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime
import TributaryTesting
@testable import Collector

@Suite("The five daemons as real processes")
struct DaemonProcessTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)

    init() throws {
        env = try TestEnvironment.current()
    }

    /// Starts `daemon run` configured through the environment, on a free admin port.
    func start(_ daemon: DaemonName, adminPort: Int) throws -> ChildProcess {
        var environment = ProcessInfo.processInfo.environment
        environment["TRIBUTARY_CONFIG"] = nil
        environment["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(env.redisPort)"
        environment["TRIBUTARY_POSTGRES_PORT"] = String(env.pgPort)
        environment[daemon.environmentPrefix + "_ADMIN_PORT"] = String(adminPort)
        environment["TRIBUTARY_HEARTBEAT_INTERVAL_SECONDS"] = "0.2"
        environment["TRIBUTARY_HYDRATION_GEOIP_DATABASE"] = env.geoDatabase
        environment["TRIBUTARY_SHUTDOWN_GRACE_PERIOD_SECONDS"] = "5"
        environment["TRIBUTARY_AGGREGATOR_STATS_PORT"] = String(freeLoopbackPort())
        return try ChildProcess(env.binDirectory + "/" + daemon.rawValue, ["run"], environment: environment,
                                stderrPath: env.directory + "/\(daemon.rawValue)-test.log")
    }

    @Test("each daemon serves /healthz, /readyz and /metrics, heartbeats, and stops cleanly on SIGTERM",
          arguments: DaemonName.allCases)
    func daemonLifecycle(daemon: DaemonName) async throws {
        if daemon == .aggregator {
            // The aggregator reads sites (time zones, read keys) from the collector's schema.
            let collector = PostgresClient(configuration: env.postgres(role: "tributary_collector"), maximumConnections: 1,
                                           threadPool: pool.pool)
            _ = try await collector.withConnection { try await CollectorSchema.migrator.migrate(using: $0) }
            collector.close()
        }
        let port = freeLoopbackPort()
        let process = try start(daemon, adminPort: port)
        let http = HTTPClient(threadPool: pool.pool)
        let base = "http://127.0.0.1:\(port)"
        let healthy = await eventually(timeout: .seconds(30)) {
            (try? await http.send(HTTPClientRequest(url: base + "/healthz", timeoutMs: 500)))?.status == 200
        }
        try #require(healthy, "\(daemon.rawValue) did not answer /healthz")
        let ready = try await http.send(HTTPClientRequest(url: base + "/readyz"))
        #expect(ready.status == 200)

        let redis = RedisConnection(configuration: env.redis(), threadPool: pool.pool)
        var heartbeat: Heartbeat?
        _ = await eventually {
            let members = (try? await redis.send("ZRANGE", HeartbeatService.instancesKey, 0, -1).array) ?? []
            for member in members.compactMap(\.string) where member.hasPrefix(daemon.rawValue + ":") {
                let instance = String(member.dropFirst(daemon.rawValue.count + 1))
                if let bytes = try? await redis.send("GET", HeartbeatService.key(service: daemon.rawValue, instance: instance)).bytes,
                   let beat = try? TributaryJSON.decode(Heartbeat.self, from: bytes), beat.pid == process.pid {
                    heartbeat = beat
                }
            }
            return heartbeat != nil
        }
        let beat = try #require(heartbeat)
        #expect(beat.adminURL == "http://127.0.0.1:\(port)")

        let metrics = try await http.send(HTTPClientRequest(url: base + "/metrics"))
        #expect(metrics.status == 200)
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("tributary_heartbeats_total"))

        process.send(SIGTERM)
        let exited = await eventually(timeout: .seconds(15)) { !process.isRunning }
        #expect(exited)
        #expect(process.exitCode == 0)
        let key = HeartbeatService.key(service: daemon.rawValue, instance: beat.instance)
        #expect(try await redis.send("EXISTS", key).integer == 0)
    }

    @Test("a bad config value stops a daemon at start-up with a one-line reason")
    func badConfig() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TRIBUTARY_CONFIG"] = nil
        environment["TRIBUTARY_REDIS_URL"] = "http://not-redis"
        let errorLog = env.directory + "/bad-config-\(UInt32.random(in: 0...UInt32.max)).log"
        let status = try await runProcess(env.binDirectory + "/collector", ["migrate"], environment: environment,
                                          stderrPath: errorLog)
        let message = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        #expect(status != 0)
        #expect(message.contains("redis.url"))
        #expect(message.split(separator: "\n").count <= 2)
    }
}
