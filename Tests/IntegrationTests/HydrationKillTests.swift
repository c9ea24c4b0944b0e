import Foundation
import Testing
import TributaryHTTP
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting

@Suite("Hydration: kill -9 mid-batch under load loses and repeats nothing")
struct HydrationKillTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)

    init() throws {
        env = try TestEnvironment.current()
    }

    func startHydration(redisDatabase: Int, adminPort: Int) throws -> ChildProcess {
        var e = ProcessInfo.processInfo.environment
        e["TRIBUTARY_CONFIG"] = nil
        e["TRIBUTARY_POSTGRES_PORT"] = String(env.pgPort)
        e["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(env.redisPort)/\(redisDatabase)"
        e["TRIBUTARY_HYDRATION_ADMIN_PORT"] = String(adminPort)
        e["TRIBUTARY_QUEUE_LEASE_SECONDS"] = "2"
        e["TRIBUTARY_QUEUE_RECOVER_INTERVAL_SECONDS"] = "0.5"
        // Small turns, so there are many commits to be killed between or inside.
        e["TRIBUTARY_QUEUE_MAX_ITEMS_PER_TURN"] = "2"
        e["TRIBUTARY_HYDRATION_CONCURRENCY"] = "2"
        e["TRIBUTARY_HYDRATION_GEOIP_DATABASE"] = env.geoDatabase
        return try ChildProcess(env.binDirectory + "/hydration", ["run"], environment: e,
                                stderrPath: env.directory + "/hydration-kill-\(adminPort).log")
    }

    @Test("every event of every raw batch is stored or rejected exactly once, and every batch routed")
    func killMidBatch() async throws {
        var redisConfiguration = env.redis()
        redisConfiguration.database = 12
        let redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        _ = try await redis.send("FLUSHDB")
        let db = PostgresClient(configuration: env.postgres(), maximumConnections: 2, threadPool: pool.pool)
        let site = Int64.random(in: 10_000_000...90_000_000)
        // Enough work that the kill lands with most of it left, however fast hydration is
        // (with 200 batches of 5 per turn, it sometimes finished before the kill landed).
        let batches = 1000
        var items: [QueueItem] = []
        let received = Date()
        for b in 0..<batches {
            let events = (0..<20).map { i -> String in
                if i == 19 && b > 0 { return #"{"type":"track","userId":"u","event":"E","messageId":"k-\#(b - 1)-0"}"# }
                if i % 10 == 5 { return #"{"type":"track","userId":"u","messageId":"k-\#(b)-\#(i)"}"# }
                return #"{"type":"page","anonymousId":"a\#(i)","messageId":"k-\#(b)-\#(i)","context":{"page":{"url":"https://k.example/\#(i)"}}}"#
            }
            let m = RawBatchMessage(batchID: Int64(b + 1), siteID: site, receivedAt: received, clientIP: "203.0.113.9",
                                    userAgent: "UA", eventCount: 20, payload: #"{"batch":[\#(events.joined(separator: ","))]}"#)
            items.append(QueueItem(site: String(site), payload: try TributaryJSON.encode(m)))
        }
        try await ReliableQueue(name: QueueName.hydrate, connection: redis).push(items)

        func ledgerCount() async -> Int64 {
            (try? await db.query("SELECT count(*) AS n FROM hydration.ledger WHERE site_id = $1", [site]).first?.int("n")) ?? -1
        }
        let first = try startHydration(redisDatabase: 12, adminPort: freeLoopbackPort())
        let started = await eventually(timeout: .seconds(60)) { await ledgerCount() >= 30 }
        #expect(started)
        first.send(SIGKILL)
        await first.wait()
        let done = await ledgerCount()
        #expect(done < Int64(batches), "hydration finished before it could be killed")

        let second = try startHydration(redisDatabase: 12, adminPort: freeLoopbackPort())
        defer { second.send(SIGTERM) }
        let finished = await eventually(timeout: .seconds(120)) {
            let depth = (try? await ReliableQueue(name: QueueName.hydrate, connection: redis).totalDepth()) ?? -1
            let inflight = (try? await ReliableQueue(name: QueueName.hydrate, connection: redis).inflight().values.reduce(0, +)) ?? -1
            return await ledgerCount() == Int64(batches) && depth == 0 && inflight == 0
        }
        #expect(finished)

        let stored = try await db.query("""
            SELECT message_id, count(*) AS copies FROM hydration.events WHERE site_id = $1 GROUP BY message_id
            """, [site]).rows
        #expect(stored.count == batches * 17 + 1)
        #expect(try stored.allSatisfy { try $0.int("copies") == 1 })
        let failed = try await db.query("""
            SELECT count(*) AS n, count(DISTINCT (batch_id, position)) AS d FROM hydration.failed_events WHERE site_id = $1
            """, [site]).first
        #expect(try failed?.int("n") == Int64(batches * 2))
        #expect(try failed?.int("d") == Int64(batches * 2))
        let sums = try await db.query("""
            SELECT sum(events_stored) AS s, sum(events_rejected) AS r, sum(events_duplicate) AS d, sum(events_received) AS t
            FROM hydration.ledger WHERE site_id = $1
            """, [site]).first
        #expect(try sums?.int("s") == Int64(batches * 17 + 1))
        #expect(try sums?.int("r") == Int64(batches * 2))
        #expect(try sums?.int("d") == Int64(batches - 1))
        #expect(try sums?.int("t") == Int64(batches * 20))

        // Routed: every batch's stored events reached the aggregate queue; a batch sent
        // twice (killed after commit, before ack) was sent with the same events.
        let queued = try await redis.send("LRANGE", "{aggregate}:site:\(site)", 0, -1).array ?? []
        var byBatch: [Int64: [HydratedBatchMessage]] = [:]
        for value in queued {
            let m = try TributaryJSON.decode(HydratedBatchMessage.self, from: value.bytes ?? [])
            byBatch[m.batchID, default: []].append(m)
        }
        #expect(byBatch.count == batches)
        #expect(byBatch.values.allSatisfy { copies in copies.allSatisfy { Set($0.events.map(\.messageID)) == Set(copies[0].events.map(\.messageID)) } })
        #expect(Set(byBatch.values.flatMap { $0[0].events.map(\.messageID) }).count == batches * 17 + 1)
    }
}
