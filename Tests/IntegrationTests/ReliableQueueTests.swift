import Foundation
import Synchronization
import Logging
import ServiceLifecycle
import Testing
import TributaryPostgres
@testable import TributaryRedis
import TributaryRuntime
import TributaryTesting

@Suite("Reliable, fair queue on a real Redis")
struct ReliableQueueTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 8)
    /// Where the queues live: the test Redis, or a Redis Cluster (``ReliableQueueClusterTests``).
    let configuration: RedisConfiguration
    let redis: RedisConnection

    init() throws {
        try self.init(configuration: try TestEnvironment.current().redis())
    }

    init(configuration: RedisConfiguration) throws {
        env = try TestEnvironment.current()
        self.configuration = configuration
        redis = RedisConnection(configuration: configuration, threadPool: pool.pool)
    }

    func consumer(_ queue: ReliableQueue, quantum: Int = 10, leaseMs: Int = 15_000) -> QueueConsumer {
        QueueConsumer(queue: queue, consumerID: QueueConsumer.makeID(prefix: "test"),
                      blockingConnection: RedisConnection(configuration: configuration, threadPool: pool.pool),
                      configuration: .init(maxItemsPerTurn: quantum, leaseMs: leaseMs, idleWaitSeconds: 0.2))
    }

    @Test("items of one site come out in order; ack empties the in-flight list")
    func fifoAndAck() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("fifo"), connection: redis)
        try await queue.push((0..<25).map { QueueItem(site: "7", payload: Array("item-\($0)".utf8)) })
        #expect(try await queue.depth(site: "7") == 25)
        #expect(try await queue.totalDepth() == 25)
        let c = consumer(queue)
        try await c.renewLease()
        var seen: [String] = []
        while true {
            let items = try await c.take()
            if items.isEmpty { break }
            #expect(items.allSatisfy { $0.site == "7" })
            seen += items.map { String(decoding: $0.payload, as: UTF8.self) }
            #expect(try await c.inflightItems() == items)
            try await c.ack(items)
        }
        #expect(seen == (0..<25).map { "item-\($0)" })
        #expect(try await c.inflightItems().isEmpty)
        #expect(try await queue.depths().isEmpty)
        #expect(try await queue.totalDepth() == 0)
    }

    @Test("acknowledging part of a take, or a take beside an entry the consumer never heard of, removes only those items")
    func partialAndForeignAck() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("ackpart"), connection: redis)
        try await queue.push((0..<6).map { QueueItem(site: "3", payload: Array("item-\($0)".utf8)) })
        let c = consumer(queue, quantum: 6)
        try await c.renewLease()
        let items = try await c.take()
        #expect(items.count == 6)
        // Part of what it holds: only those leave the in-flight list.
        try await c.ack(Array(items.prefix(2)))
        #expect(try await c.inflightItems() == Array(items.dropFirst(2)))
        // An entry it never took (as a take whose reply was lost leaves one): acknowledging
        // all it holds must not delete that entry with the rest.
        let key = queue.keys.inflight(c.consumerID)
        _ = try await redis.send("LPUSH", key, Array("3\nforeign".utf8))
        try await c.ack(Array(items.dropFirst(2)))
        #expect(try await c.inflightItems().map { String(decoding: $0.payload, as: UTF8.self) } == ["foreign"])
        // The same payload twice is two entries: both are acknowledged, and the list goes whole.
        _ = try await redis.send("DEL", key)
        try await queue.push([QueueItem(site: "3", payload: Array("twin".utf8)), QueueItem(site: "3", payload: Array("twin".utf8))])
        let twins = try await c.take()
        #expect(twins.count == 2)
        try await c.ack(twins)
        #expect(try await redis.send("EXISTS", key).integer == 0)
        #expect(try await queue.totalDepth() == 0)
    }

    @Test("a take that lands after a recovery, just before a whole take's acknowledgement, keeps its entries")
    func takeBetweenRecoveryAndAck() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("ackrace"), connection: redis)
        try await queue.push((0..<3).map { QueueItem(site: "4", payload: Array("first-\($0)".utf8)) })
        let c = consumer(queue, quantum: 3)
        try await c.renewLease()
        let items = try await c.take()
        #expect(items.count == 3)
        // Its lease lapsed (a Redis stall) and a recovery gave its entries back, then a take
        // of its own ran on the server whose reply it has not read yet: as many entries as
        // it is about to acknowledge. (The pop script run by hand is that take.)
        let key = queue.keys.inflight(c.consumerID)
        _ = try await redis.send("DEL", key, queue.keys.lastTake(c.consumerID))
        try await queue.push((0..<3).map { QueueItem(site: "4", payload: Array("second-\($0)".utf8)) })
        let inFlight = try await QueueScripts.pop.run(
            on: redis, keys: [queue.keys.ring, queue.keys.sites, key, queue.keys.depth, queue.keys.lastTake(c.consumerID)],
            arguments: [queue.keys.sitePrefix, 3, 1, "a-take-not-yet-read", 60_000])
        #expect(QueueConsumer.items(fromPop: inFlight.array ?? []).count == 3)
        try await c.ack(items)
        #expect(try await c.inflightItems().map { String(decoding: $0.payload, as: UTF8.self) }.sorted()
                == ["second-0", "second-1", "second-2"], "the unread take's entries stay for recovery")
        // With no take since its own, the same acknowledgement deletes the list whole.
        let again = try await c.take()
        #expect(again.isEmpty)
        _ = try await redis.send("DEL", key)
        try await queue.push((0..<3).map { QueueItem(site: "4", payload: Array("third-\($0)".utf8)) })
        let third = try await c.take()
        #expect(third.count == 3)
        try await c.ack(third)
        #expect(try await redis.send("EXISTS", key).integer == 0)
    }

    @Test("one round trip pushes to several queues, each in order, and reloads the script after a flush")
    func pushToSeveralQueues() async throws {
        let queues = (0..<3).map { ReliableQueue(name: TestEnvironment.uniqueName("multi\($0)"), connection: redis) }
        // A flushed script cache (as after a restart) answers NOSCRIPT: those pushes did not run and are sent again.
        _ = try await redis.send("SCRIPT", "FLUSH")
        try await ReliableQueue.push(queues.enumerated().map { n, queue in
            (queue, (0..<(n + 2)).map { QueueItem(site: "s\($0 % 2)", payload: Array("q\(n)-\($0)".utf8)) })
        } + [(queues[0], [])])
        for (n, queue) in queues.enumerated() {
            #expect(try await queue.totalDepth() == n + 2)
            let c = consumer(queue, quantum: 100)
            try await c.renewLease()
            var seen: [String] = []
            while true {
                let items = try await c.take()
                if items.isEmpty { break }
                seen += items.map { String(decoding: $0.payload, as: UTF8.self) }
                try await c.ack(items)
            }
            let expected = (0..<(n + 2)).map { "q\(n)-\($0)" }
            #expect(seen.sorted() == expected.sorted())
            #expect(seen.filter { Int($0.split(separator: "-")[1])! % 2 == 0 } == expected.filter { Int($0.split(separator: "-")[1])! % 2 == 0 })
        }
    }

    @Test("binary payloads with newlines and NULs survive push, take, release and recovery")
    func binaryPayloads() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("bin"), connection: redis)
        let payload: [UInt8] = [0, 10, 13, 10, 255, 0] + Array("{\"a\":\"b\\n\"}".utf8)
        try await queue.push(payload, site: "1")
        let c = consumer(queue, leaseMs: 1_000)
        try await c.renewLease()
        let first = try await c.take()
        #expect(first.map(\.payload) == [payload])
        try await c.release(first)
        let second = try await c.take()
        #expect(second.map(\.payload) == [payload])
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(try await queue.recoverOrphans() == 1)
        let other = consumer(queue)
        try await other.renewLease()
        #expect(try await other.take().map(\.payload) == [payload])
    }

    @Test("a site with 100,000 queued items cannot delay a site with 10")
    func fairness() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("fair"), connection: redis)
        let bigBatch = (0..<1_000).map { QueueItem(site: "big", payload: Array("b\($0)".utf8)) }
        for _ in 0..<100 { try await queue.push(bigBatch) }
        try await queue.push((0..<10).map { QueueItem(site: "small", payload: Array("s\($0)".utf8)) })
        #expect(try await queue.depth(site: "big") == 100_000)

        let c = consumer(queue, quantum: 1)
        try await c.renewLease()
        var pops = 0
        var smallTaken = 0
        while smallTaken < 10 && pops < 10_000 {
            let items = try await c.take()
            pops += 1
            smallTaken += items.filter { $0.site == "small" }.count
            try await c.ack(items)
        }
        #expect(smallTaken == 10)
        #expect(pops <= 300, "the small site's 10 items took \(pops) pops")
        _ = try await redis.send("DEL", queue.keys.site("big"), queue.keys.ring, queue.keys.sites)
    }

    @Test("a take of several sites gives each its quantum in ring order, grouped by site, and the others their turn next")
    func severalSitesPerTake() async throws {
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("sites"), connection: redis)
        for site in ["a", "b", "c", "d"] {
            try await queue.push((0..<5).map { QueueItem(site: site, payload: Array("\(site)\($0)".utf8)) })
        }
        let c = QueueConsumer(queue: queue, consumerID: QueueConsumer.makeID(prefix: "test"),
                              blockingConnection: RedisConnection(configuration: configuration, threadPool: pool.pool),
                              configuration: .init(maxItemsPerTurn: 3, maxSitesPerTake: 3, idleWaitSeconds: 0.2))
        try await c.renewLease()
        func names(_ items: [QueueItem]) -> [String] { items.map { String(decoding: $0.payload, as: UTF8.self) } }
        let first = try await c.take()
        #expect(names(first) == ["a0", "a1", "a2", "b0", "b1", "b2", "c0", "c1", "c2"])
        #expect(first.map(\.site) == ["a", "a", "a", "b", "b", "b", "c", "c", "c"])
        #expect(try await c.inflightItems() == first)
        #expect(try await queue.totalDepth() == 11)
        try await c.ack(first)
        // d waited a turn, so it comes first now; a and b are then emptied and leave the ring.
        let second = try await c.take()
        #expect(names(second) == ["d0", "d1", "d2", "a3", "a4", "b3", "b4"])
        try await c.ack(second)
        let third = try await c.take()
        #expect(names(third) == ["c3", "c4", "d3", "d4"])
        try await c.ack(third)
        #expect(try await c.take().isEmpty)
        #expect(try await queue.totalDepth() == 0)
        #expect(try await queue.depths().isEmpty)
    }

    @Test("a consumer killed with SIGKILL mid-item loses nothing, and effects apply once")
    func sigkillMidItem() async throws {
        let name = TestEnvironment.uniqueName("kill")
        let schema = TestEnvironment.uniqueName("killtest")
        let postgres = PostgresClient(configuration: env.postgres(), maximumConnections: 2, threadPool: pool.pool)
        try await postgres.withConnection { try await LedgerHandler.createTables(schema: schema, using: $0) }
        let queue = ReliableQueue(name: name, connection: redis)
        let all = (0..<40).map { "job-\($0)" }
        try await queue.push(all.enumerated().map { QueueItem(site: String($0.offset % 4), payload: Array($0.element.utf8)) })

        // One victim dies before committing its item, one after committing but before the ack.
        var killed: [String] = []
        for mode in ["before-commit", "after-commit"] {
            let (process, taken) = try await startFixture(queue: name, schema: schema, mode: mode)
            killed.append(taken)
            process.send(SIGKILL)
            await process.wait()
            #expect(process.terminatingSignal == SIGKILL)
        }
        #expect(try await queue.inflight().values.reduce(0, +) == 2)

        // A live worker recovers both orphans once their leases expire, and processes everything.
        let worker = QueueWorker(consumer: consumer(queue, leaseMs: 2_000),
                                 handler: LedgerHandler(postgres: postgres, schema: schema),
                                 recoverIntervalSeconds: 0.2, logger: Logger(label: "test"))
        let done = await withTaskGroup(of: Bool.self) { group in
            group.addTask { try? await worker.run(); return true }
            let finished = await eventually(timeout: .seconds(30)) {
                let n = try? await postgres.query("SELECT count(*) AS n FROM \(schema).ledger").first?.int("n")
                let depth = (try? await queue.depths().values.reduce(0, +)) ?? -1
                let inflight = (try? await queue.inflight().values.reduce(0, +)) ?? -1
                return n == 40 && depth == 0 && inflight == 0
            }
            group.cancelAll()
            return finished
        }
        #expect(done)
        let effects = try await postgres.query("SELECT item, applied FROM \(schema).effects ORDER BY item").rows
        #expect(effects.count == 40)
        #expect(try effects.allSatisfy { try $0.int("applied") == 1 })
        #expect(Set(try effects.compactMap { try $0.string("item") }) == Set(all))
        #expect(killed.allSatisfy { all.contains($0) })
        #expect(try await queue.inflight().values.reduce(0, +) == 0)
        postgres.close()
    }

    /// Starts the fixture consumer and waits until it reports the item it took.
    func startFixture(queue: String, schema: String, mode: String) async throws -> (ChildProcess, String) {
        let process = try ChildProcess(
            env.binDirectory + "/tributary-queue-fixture",
            [String(env.redisPort), String(env.pgPort), queue, schema, mode, "2000"], captureOutput: true)
        guard let line = await process.readLine(), line.hasPrefix("TAKEN ") else {
            process.send(SIGKILL)
            throw TestEnvironmentError(description: "fixture did not take an item")
        }
        return (process, String(line.dropFirst(6)))
    }

    @Test("a worker finishes the items in hand on graceful shutdown and leaves nothing in flight")
    func gracefulShutdown() async throws {
        struct SlowHandler: QueueHandler {
            let seen: @Sendable (QueueItem) -> Void
            func handle(_ items: [QueueItem]) async throws {
                try? await Task.sleep(for: .milliseconds(50))
                items.forEach(seen)
            }
        }
        let queue = ReliableQueue(name: TestEnvironment.uniqueName("graceful"), connection: redis)
        try await queue.push((0..<200).map { QueueItem(site: String($0 % 3), payload: Array("g\($0)".utf8)) })
        let counter = Counter()
        let worker = QueueWorker(consumer: consumer(queue, quantum: 5), handler: SlowHandler { _ in counter.add() },
                                 logger: Logger(label: "test"))
        let group = ServiceGroup(services: [worker], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = await eventually { counter.value >= 20 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let processed = counter.value
        let waiting = try await queue.depths().values.reduce(0, +)
        #expect(processed + waiting == 200)
        #expect(try await queue.totalDepth() == waiting)
        #expect(processed < 200)
        #expect(try await queue.inflight().values.reduce(0, +) == 0)
    }
}

/// A thread-safe counter for tests.
final class Counter: Sendable {
    private let storage = Mutex(0)
    func add() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}
