import TributaryPostgres
import TributaryRedis

/// A dependency `/readyz` checks: PostgreSQL, Redis, or anything a daemon adds.
public struct ReadinessCheck: Sendable {
    public let name: String
    public let check: @Sendable () async throws -> Void

    public init(name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }

    /// `SELECT 1` through the daemon's own pool.
    public static func postgres(_ client: PostgresClient) -> ReadinessCheck {
        ReadinessCheck(name: "postgres") { try await client.query("SELECT 1") }
    }

    /// `PING` on the daemon's command connection.
    public static func redis(_ connection: RedisConnection) -> ReadinessCheck {
        ReadinessCheck(name: "redis") { _ = try await connection.send("PING") }
    }
}
