import Testing
import TributaryPostgres
import TributaryRedis
import TributaryTesting

/// Tests that stop and restart servers use their own ("disrupt") servers, one at a time:
/// every suite nested here runs serially with the others.
@Suite("Server outages", .serialized)
struct DisruptiveTests {}

extension DisruptiveTests {
@Suite("Reconnect after a server restart")
struct RestartTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 4)

    init() throws {
        env = try TestEnvironment.current()
    }

    @Test("Redis: the connection reconnects by itself after the server restarts")
    func redisRestart() async throws {
        let redis = RedisConnection(configuration: env.redis(disrupt: true), threadPool: pool.pool)
        let key = TestEnvironment.uniqueName("restart")
        _ = try await redis.send("SET", key, "before")
        _ = try await redis.send("BGREWRITEAOF")
        try await Task.sleep(for: .milliseconds(300))
        try await env.restartDisruptRedis()
        // The first command may meet the dead socket; it must fail as connectionLost,
        // and later commands succeed on a new connection.
        do {
            _ = try await redis.send("PING")
        } catch {
            #expect(error.code == .connectionLost || error.code == .connectionFailed)
        }
        let recovered = await eventually(timeout: .seconds(10)) {
            (try? await redis.send("GET", key))?.string == "before"
        }
        #expect(recovered)
    }

    @Test("Redis: commands fail with typed errors while it is down and work once it is back")
    func redisDownThenBack() async throws {
        let redis = RedisConnection(configuration: env.redis(disrupt: true), threadPool: pool.pool)
        _ = try await redis.send("PING")
        try await env.stopDisruptRedis()
        let error = await #expect(throws: RedisError.self) { _ = try await redis.send("PING") }
        #expect(error?.code == .connectionLost || error?.code == .connectionFailed)
        try await env.startDisruptRedis()
        #expect(await eventually { (try? await redis.send("PING")) == .status("PONG") })
    }

    @Test("PostgreSQL: the connection reconnects by itself after the server restarts")
    func postgresRestart() async throws {
        let db = PostgresConnection(configuration: env.postgres(disrupt: true), threadPool: pool.pool)
        let before = try #require(try await db.query("SELECT pg_backend_pid() AS pid").first?.int("pid"))
        try await env.restartDisruptPostgres()
        do {
            try await db.query("SELECT 1")
        } catch {
            #expect(error.code == .connectionLost || error.code == .connectionFailed)
        }
        var after: Int64?
        let recovered = await eventually(timeout: .seconds(15)) {
            after = try? await db.query("SELECT pg_backend_pid() AS pid").first?.int("pid")
            return after != nil
        }
        #expect(recovered)
        #expect(after != before)
    }

    @Test("PostgreSQL: a transaction cut by a restart is not half-applied")
    func postgresRestartMidTransaction() async throws {
        let db = PostgresConnection(configuration: env.postgres(disrupt: true), threadPool: pool.pool)
        let table = TestEnvironment.uniqueName("public.restart")
        try await db.query("CREATE TABLE \(table) (id bigint PRIMARY KEY)")
        await #expect(throws: PostgresError.self) {
            try await db.withTransaction { tx in
                try await tx.query("INSERT INTO \(table) VALUES (1)")
                try await env.restartDisruptPostgres()
                try await tx.query("INSERT INTO \(table) VALUES (2)")
            }
        }
        #expect(await eventually(timeout: .seconds(15)) { (try? await db.query("SELECT 1")) != nil })
        #expect(try await db.query("SELECT count(*) AS n FROM \(table)").first?.int("n") == 0)
        try await db.query("DROP TABLE \(table)")
    }
}
}
