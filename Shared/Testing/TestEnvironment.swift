import Foundation
import NIOPosix
import TributaryPostgres
import TributaryRedis

/// The real servers the integration tests use, as `make test` starts them and
/// describes them in the environment:
///
/// | variable | meaning |
/// |---|---|
/// | `TRIBUTARY_TEST_PG_PORT` | PostgreSQL for ordinary tests (admin role `tributary_admin`) |
/// | `TRIBUTARY_TEST_DISRUPT_PG_PORT` | PostgreSQL that tests may restart |
/// | `TRIBUTARY_TEST_REDIS_PORT` | Redis for ordinary tests |
/// | `TRIBUTARY_TEST_DISRUPT_REDIS_PORT` | Redis that tests may restart |
/// | `TRIBUTARY_TEST_DIR` | the servers' data folder (`.run/test`) |
/// | `TRIBUTARY_TEST_STACK` | `deploy/dev/stack.sh`, to restart servers |
/// | `TRIBUTARY_BIN_DIR` | where the built executables are |
/// | `TRIBUTARY_TEST_PYTHON` | a Python with the client SDKs from PyPI installed |
/// | `TRIBUTARY_TEST_FIXTURES` | `Tests/Fixtures` |
/// | `TRIBUTARY_TEST_GEOIP_DATABASE` | the GeoLite2 City database (`.run/GeoLite2-City.mmdb`) |
/// | `TRIBUTARY_TEST_OUTAGE_SECONDS` | how long outage tests keep a server down (default 60) |
/// | `TRIBUTARY_TEST_SINK_OUTAGE_SECONDS` | how long the forwarder's outage test keeps a sink down under load (default 300) |
public struct TestEnvironment: Sendable {
    public let pgPort: Int
    public let disruptPGPort: Int
    public let redisPort: Int
    public let disruptRedisPort: Int
    public let directory: String
    public let stackScript: String
    public let binDirectory: String
    public let python: String
    public let fixtures: String
    public let outageSeconds: Int
    public let geoDatabase: String

    /// Reads the environment; throws a clear message when tests run outside `make test`.
    public static func current() throws -> TestEnvironment {
        let env = ProcessInfo.processInfo.environment
        func value(_ name: String) throws -> String {
            guard let v = env[name], !v.isEmpty else {
                throw TestEnvironmentError(description: "\(name) is not set: run the integration tests with `make test`, which starts the servers they need")
            }
            return v
        }
        func port(_ name: String) throws -> Int {
            guard let p = Int(try value(name)) else { throw TestEnvironmentError(description: "\(name) is not a port") }
            return p
        }
        return TestEnvironment(
            pgPort: try port("TRIBUTARY_TEST_PG_PORT"), disruptPGPort: try port("TRIBUTARY_TEST_DISRUPT_PG_PORT"),
            redisPort: try port("TRIBUTARY_TEST_REDIS_PORT"),
            disruptRedisPort: try port("TRIBUTARY_TEST_DISRUPT_REDIS_PORT"),
            directory: try value("TRIBUTARY_TEST_DIR"), stackScript: try value("TRIBUTARY_TEST_STACK"),
            binDirectory: try value("TRIBUTARY_BIN_DIR"), python: try value("TRIBUTARY_TEST_PYTHON"),
            fixtures: try value("TRIBUTARY_TEST_FIXTURES"),
            outageSeconds: Int(env["TRIBUTARY_TEST_OUTAGE_SECONDS"] ?? "") ?? 60,
            geoDatabase: try value("TRIBUTARY_TEST_GEOIP_DATABASE"))
    }

    /// PostgreSQL settings for `role` (the superuser `tributary_admin` by default).
    public func postgres(role: String = "tributary_admin", disrupt: Bool = false) -> PostgresConfiguration {
        PostgresConfiguration(host: "127.0.0.1", port: disrupt ? disruptPGPort : pgPort, database: "tributary",
                              user: role, connectTimeoutSeconds: 2, applicationName: "tributary-tests",
                              reconnectBackoffMs: 20, reconnectBackoffMaxMs: 500)
    }

    /// Redis settings for the ordinary or the disruptable server.
    public func redis(disrupt: Bool = false, socketTimeoutMs: Int = 5_000) -> RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: disrupt ? disruptRedisPort : redisPort,
                           socketTimeoutMs: socketTimeoutMs, reconnectBackoffMs: 20, reconnectBackoffMaxMs: 500)
    }

    /// Runs `deploy/dev/stack.sh` with `arguments` and waits for it.
    public func stack(_ arguments: String...) async throws {
        guard try await runProcess(stackScript, arguments) == 0 else {
            throw TestEnvironmentError(description: "stack.sh \(arguments.joined(separator: " ")) failed")
        }
    }

    /// Restarts the disruptable PostgreSQL server.
    public func restartDisruptPostgres() async throws { try await stack("pg-restart", directory + "/pg-disrupt") }
    public func stopDisruptPostgres() async throws { try await stack("pg-stop", directory + "/pg-disrupt") }
    public func startDisruptPostgres() async throws { try await stack("pg-start", directory + "/pg-disrupt", String(disruptPGPort)) }
    /// Restarts the disruptable Redis server (its append-only file keeps the data).
    public func restartDisruptRedis() async throws {
        try await stack("redis-restart", directory + "/redis-disrupt", String(disruptRedisPort))
    }
    public func stopDisruptRedis() async throws { try await stack("redis-stop", directory + "/redis-disrupt", String(disruptRedisPort)) }
    public func startDisruptRedis() async throws { try await stack("redis-start", directory + "/redis-disrupt", String(disruptRedisPort)) }

    /// A unique name of letters and underscores only (for schema names the migrator accepts).
    public static func uniqueLetters(_ prefix: String) -> String {
        prefix + "_" + String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! })
    }

    /// A unique lower-case name for tables, queues and schemas of one test.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt64.random(in: 0...UInt64.max) % 1_000_000_000_000)"
    }
}

/// The environment lacks what the integration tests need.
public struct TestEnvironmentError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// A started thread pool for a test, shut down with ``stop()``.
public final class TestThreadPool: Sendable {
    public let pool: NIOThreadPool
    public init(threads: Int = 8) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }
    public func stop() { try? pool.syncShutdownGracefully() }
}
