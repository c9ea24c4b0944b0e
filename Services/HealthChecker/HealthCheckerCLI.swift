import Foundation
import Logging
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// What the health-checker's commands connect to: PostgreSQL as the health-checker's role
/// (reads every schema, writes only `health`), and Redis.
struct HealthCheckerCLI {
    let postgres: PostgresClient
    let redis: RedisConnection
    let configuration: HealthCheckerConfiguration
    let runtime: RuntimeConfiguration
    let pool: NIOThreadPoolBox

    /// Runs `body` connected; a connection failure or a missing schema becomes a one-line reason.
    static func with(_ options: CommonOptions, needsPostgres: Bool = true, _ body: (HealthCheckerCLI) async throws -> Void) async throws {
        let reader = try await ConfigLoader.load(path: options.config)
        let runtime = try RuntimeConfiguration(daemon: .healthChecker, reader: reader)
        let configuration = try HealthCheckerConfiguration(reader: reader)
        let pool = NIOThreadPoolBox(threads: 4)
        defer { pool.stop() }
        let client = PostgresClient(configuration: runtime.postgres, maximumConnections: 2, threadPool: pool.pool)
        defer { client.close() }
        let redis = RedisConnection(configuration: runtime.redis, threadPool: pool.pool)
        defer { redis.close() }
        do {
            try await body(HealthCheckerCLI(postgres: client, redis: redis, configuration: configuration, runtime: runtime, pool: pool))
        } catch let error as PostgresError where error.code == .connectionFailed && needsPostgres {
            throw DaemonError("cannot connect to PostgreSQL at \(runtime.postgres.host):\(runtime.postgres.port) as \(runtime.postgres.user)")
        } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "42703" {
            throw DaemonError("the health schema is not migrated; run: health-checker migrate")
        } catch let error as RedisError {
            throw DaemonError("Redis at \(runtime.redis.host):\(runtime.redis.port): \(error)")
        }
    }

    var logger: Logger {
        var l = Logger(label: "health-checker")
        l.logLevel = .error
        return l
    }
}
