import Testing
import TributaryRedis
import TributaryTesting

@Suite("Redis wrapper against a real server")
struct RedisConnectionTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 4)
    let redis: RedisConnection

    init() throws {
        env = try TestEnvironment.current()
        redis = RedisConnection(configuration: env.redis(), threadPool: pool.pool)
    }

    @Test("every byte value round-trips, NUL and CR/LF included")
    func binarySafeValues() async throws {
        let key = TestEnvironment.uniqueName("bin")
        let value: [UInt8] = Array(0...255) + Array("\r\n*1\r\n$4\r\nPING\r\n".utf8)
        _ = try await redis.send("SET", key, value)
        let read = try await redis.send("GET", key)
        #expect(read.bytes == value)
        _ = try await redis.send("DEL", key)
    }

    @Test("a value that looks like commands is stored verbatim and runs nothing")
    func injectionStoredVerbatim() async throws {
        let victim = TestEnvironment.uniqueName("victim")
        let key = TestEnvironment.uniqueName("inj")
        _ = try await redis.send("SET", victim, "still here")
        let attack = "x\r\nDEL \(victim)\r\nFLUSHALL\r\n"
        _ = try await redis.send("SET", key, attack)
        #expect(try await redis.send("GET", key).string == attack)
        #expect(try await redis.send("GET", victim).string == "still here")
        _ = try await redis.send("DEL", key, victim)
    }

    @Test("server errors become typed errors without the payload")
    func serverErrorsAreTyped() async throws {
        let key = TestEnvironment.uniqueName("wrongtype")
        _ = try await redis.send("SET", key, "secret-value")
        let error = await #expect(throws: RedisError.self) {
            _ = try await redis.send("LPUSH", key, "secret-item")
        }
        #expect(error?.code == .serverError)
        #expect(error?.serverErrorPrefix == "WRONGTYPE")
        #expect(error.map { !"\($0)".contains("secret") } == true)
        // The connection is still usable after an error reply.
        #expect(try await redis.send("GET", key).string == "secret-value")
        _ = try await redis.send("DEL", key)
    }

    @Test("a pipeline returns every reply in order, errors in place")
    func pipelining() async throws {
        let key = TestEnvironment.uniqueName("pipe")
        var commands: [[any RedisArgumentConvertible]] = (0..<200).map { ["RPUSH", key, $0] }
        commands.append(["INCR", key])
        commands.append(["LLEN", key])
        let replies = try await redis.pipeline(commands)
        #expect(replies.count == 202)
        #expect(replies[199].integer == 200)
        #expect(replies[200] == .error(prefix: "WRONGTYPE"))
        #expect(replies[201].integer == 200)
        _ = try await redis.send("DEL", key)
    }

    @Test("connecting to a closed port is a typed connection failure")
    func connectionRefused() async throws {
        let dead = RedisConnection(
            configuration: RedisConfiguration(port: freeLoopbackPort(), connectTimeoutMs: 500), threadPool: pool.pool)
        let error = await #expect(throws: RedisError.self) { _ = try await dead.send("PING") }
        #expect(error?.code == .connectionFailed)
    }

    @Test("a closed connection refuses commands")
    func closedConnection() async throws {
        let connection = RedisConnection(configuration: env.redis(), threadPool: pool.pool)
        _ = try await connection.send("PING")
        connection.close()
        let error = await #expect(throws: RedisError.self) { _ = try await connection.send("PING") }
        #expect(error?.code == .closed)
    }

    @Test("a connection to another database selects it when it connects; a wrong password fails the connection")
    func connectionSetUp() async throws {
        var configuration = env.redis()
        configuration.database = 15  // no other suite uses 15 (they flush their own databases)
        let other = RedisConnection(configuration: configuration, threadPool: pool.pool)
        defer { other.close() }
        let key = TestEnvironment.uniqueName("db")
        _ = try await other.send("SET", key, "in 15")
        #expect(try await redis.send("EXISTS", key).integer == 0)
        let replies = try await redis.pipeline([["SELECT", 15], ["GET", key], ["DEL", key], ["SELECT", 0]])
        #expect(replies[1].string == "in 15")
        configuration.password = "not-the-password"
        let refused = RedisConnection(configuration: configuration, threadPool: pool.pool)
        defer { refused.close() }
        let error = await #expect(throws: RedisError.self) { _ = try await refused.send("PING") }
        #expect(error?.code == .connectionFailed)
    }
}
