import Configuration
import Testing
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

@Suite("Configuration and plumbing logic")
struct PlumbingTests {
    @Test("Redis URLs parse, and bad ones are refused", arguments: [
        ("redis://127.0.0.1:6390/2", "127.0.0.1", 6390, 2, nil),
        ("redis://:pw@cache.internal", "cache.internal", 6379, 0, "pw"),
        ("redis://user:pw@[::1]:7000", "[::1]", 7000, 0, "pw"),
    ] as [(String, String, Int, Int, String?)])
    func redisURLs(url: String, host: String, port: Int, db: Int, password: String?) throws {
        let c = try #require(RedisConfiguration(url: url))
        #expect(c.host == host)
        #expect(c.port == port)
        #expect(c.database == db)
        #expect(c.password == password)
    }

    @Test("malformed Redis URLs are refused")
    func badRedisURLs() {
        #expect(RedisConfiguration(url: "http://x") == nil)
        #expect(RedisConfiguration(url: "redis://host:99999") == nil)
        #expect(RedisConfiguration(url: "redis://host:1/x") == nil)
        #expect(RedisConfiguration(url: "unix://relative") == nil)
        #expect(RedisConfiguration(url: "unix:///run/redis.sock")?.unixSocketPath == "/run/redis.sock")
    }

    @Test("queue keys share one hash tag, so a queue lives in one cluster slot")
    func hashTags() {
        let keys = QueueKeys(name: "forward:12")
        for key in [keys.ring, keys.sites, keys.consumers, keys.wake, keys.site("3"), keys.inflight("c1")] {
            #expect(key.hasPrefix("{forward:12}:"))
        }
    }

    @Test("the runtime configuration has defaults and names the bad key")
    func runtimeConfiguration() throws {
        let defaults = try RuntimeConfiguration(daemon: .hydration, reader: ConfigReader(provider: InMemoryProvider(values: [:])))
        #expect(defaults.postgres.user == "tributary_hydration")
        #expect(defaults.adminPort == 9102)
        #expect(defaults.redis.port == 6379)

        let reader = ConfigReader(provider: InMemoryProvider(values: ["queue.maxItemsPerTurn": 0]))
        #expect {
            try RuntimeConfiguration(daemon: .collector, reader: reader)
        } throws: { error in
            "\(error)".contains("queue.maxItemsPerTurn")
        }
        let timeouts = ConfigReader(provider: InMemoryProvider(values: ["redis.socketTimeoutMs": 500, "queue.idleWaitSeconds": 1]))
        #expect(throws: ConfigurationError.self) { try RuntimeConfiguration(daemon: .collector, reader: timeouts) }
    }

    @Test("environment variables override the file, with the TRIBUTARY_ prefix")
    func environmentOverrides() async throws {
        let reader = try await ConfigLoader.load(path: nil, environment: [
            "TRIBUTARY_REDIS_URL": "redis://10.0.0.1:7000",
            "TRIBUTARY_HEALTH_CHECKER_ADMIN_PORT": "9999",
            "TRIBUTARY_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        ])
        let c = try RuntimeConfiguration(daemon: .healthChecker, reader: reader)
        #expect(c.redis.host == "10.0.0.1")
        #expect(c.adminPort == 9999)
        #expect(c.heartbeatIntervalSeconds == 0.5)
    }

    @Test("a missing config file is a clear error")
    func missingFile() async {
        await #expect {
            _ = try await ConfigLoader.load(path: "/nonexistent/tributary.json", environment: [:])
        } throws: { error in
            "\(error)".contains("/nonexistent/tributary.json")
        }
    }

    @Test("migration checksums change when the SQL does")
    func checksums() {
        let a = Migration(version: 1, name: "a", sql: "CREATE TABLE t (id bigint)")
        let b = Migration(version: 1, name: "a", sql: "CREATE TABLE t (id bigint, x text)")
        #expect(a.checksum == Migration(version: 1, name: "a", sql: "CREATE TABLE t (id bigint)").checksum)
        #expect(a.checksum != b.checksum)
    }

    @Test("binary COPY data has the PGCOPY header, row counts and trailer")
    func copyWriterLayout() {
        var writer = PostgresCopyWriter()
        writer.beginRow(columns: 2)
        writer.append(int: 1)
        writer.appendNull()
        #expect(writer.rowCount == 1)
        let data = writer.finish()
        #expect(Array(data.prefix(11)) == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        #expect(Array(data.suffix(2)) == [0xFF, 0xFF])
        #expect(data.count == 11 + 8 + 2 + (4 + 8) + 4 + 2)
    }
}
