import Foundation
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Aggregator

@Suite("Aggregator: kill -9 mid-batch under load leaves every number exact")
struct AggregatorKillTests {
    let env: TestEnvironment

    init() throws {
        env = try TestEnvironment.current()
    }

    func startAggregator(redisDatabase: Int, adminPort: Int) throws -> ChildProcess {
        var e = ProcessInfo.processInfo.environment
        e["TRIBUTARY_CONFIG"] = nil
        e["TRIBUTARY_POSTGRES_PORT"] = String(env.pgPort)
        e["TRIBUTARY_REDIS_URL"] = "redis://127.0.0.1:\(env.redisPort)/\(redisDatabase)"
        e["TRIBUTARY_AGGREGATOR_ADMIN_PORT"] = String(adminPort)
        e["TRIBUTARY_AGGREGATOR_STATS_PORT"] = String(freeLoopbackPort())
        e["TRIBUTARY_QUEUE_LEASE_SECONDS"] = "2"
        e["TRIBUTARY_QUEUE_RECOVER_INTERVAL_SECONDS"] = "0.5"
        e["TRIBUTARY_QUEUE_MAX_ITEMS_PER_TURN"] = "5"
        e["TRIBUTARY_AGGREGATOR_CONCURRENCY"] = "2"
        return try ChildProcess(env.binDirectory + "/aggregator", ["run"], environment: e,
                                stderrPath: env.directory + "/aggregator-kill-\(adminPort).log")
    }

    /// Batches whose events are later than every earlier batch's, over 40 visitors and 12 pages.
    static func batches(site: Int64, count: Int) -> [QueueItem] {
        typealias F = AggregatorFixture
        let start = ISO8601.parse("2030-01-10T03:00:00Z")!.timeIntervalSince1970
        return (0..<count).map { b in
            let events = (0..<20).map { i -> JSONValue in
                let n = b * 20 + i
                let time = ISO8601.format(Date(timeIntervalSince1970: start + Double(n) * 7))
                let visitor = "v\((n * 7) % 40)"
                if i % 9 == 4 {
                    return F.event(Int64(n + 1), "track", at: time, visitor: visitor, path: "/p\(n % 12)", name: "E\(n % 3)",
                                   source: n % 5 == 0 ? "Google" : nil, props: ["plan": .string(n % 2 == 0 ? "pro" : "free")])
                }
                return F.event(Int64(n + 1), "page", at: time, visitor: visitor, path: "/p\(n % 12)",
                               source: n % 5 == 0 ? "Google" : nil, country: ["US", "DE", "FR"][n % 3])
            }
            return F.item(site: site, batch: Int64(b + 1), events)
        }
    }

    @Test("after kill -9 and a restart, the numbers equal those of the same batches applied without a crash")
    func killMidBatch() async throws {
        let f = try await AggregatorFixture(redisDatabase: 14)
        _ = try await f.redis.send("FLUSHDB")
        let count = 300
        let reference = try await f.addSite()
        for item in Self.batches(site: reference, count: count) { try await f.handler.handle([item]) }
        let site = try await f.addSite()
        try await ReliableQueue(name: QueueName.aggregate, connection: f.redis).push(Self.batches(site: site, count: count))

        func ledgerCount() async -> Int64 {
            (try? await f.db.query("SELECT count(*) AS n FROM aggregator.ledger WHERE site_id = $1", [site]).first?.int("n")) ?? -1
        }
        let first = try startAggregator(redisDatabase: 14, adminPort: freeLoopbackPort())
        #expect(await eventually(timeout: .seconds(60)) { await ledgerCount() >= 40 })
        first.send(SIGKILL)
        await first.wait()
        #expect(await ledgerCount() < Int64(count), "the aggregator finished before it could be killed")

        let second = try startAggregator(redisDatabase: 14, adminPort: freeLoopbackPort())
        defer { second.send(SIGTERM) }
        let queue = ReliableQueue(name: QueueName.aggregate, connection: f.redis)
        let finished = await eventually(timeout: .seconds(120)) {
            let depth = (try? await queue.totalDepth()) ?? -1
            let inflight = (try? await queue.inflight().values.reduce(0, +)) ?? -1
            return await ledgerCount() == Int64(count) && depth == 0 && inflight == 0
        }
        #expect(finished)
        let expected = try await f.snapshot(reference)
        #expect(expected.count > 50)
        let got = try await f.snapshot(site)
        #expect(got == expected, "only after the crash: \(Set(got).subtracting(expected).sorted()); missing: \(Set(expected).subtracting(got).sorted())")
        let sums = try await f.db.query("""
            SELECT sum(events_received) AS r, sum(events_applied) AS a FROM aggregator.ledger WHERE site_id = $1
            """, [site]).first
        #expect(try sums?.int("r") == Int64(count * 20) && sums?.int("a") == Int64(count * 20))
    }
}
