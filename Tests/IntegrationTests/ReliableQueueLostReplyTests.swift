import Foundation
import Testing
import TributaryRedis
import TributaryTesting

/// A take whose script ran but whose reply was lost (Redis restarting, a broken
/// connection) must not leave items in a live consumer's in-flight list forever.
@Suite("Reliable queue: a take whose reply was lost")
struct ReliableQueueLostReplyTests {
    @Test("the items a lost take moved in flight are given back before the next take, then taken once")
    func lostTakeReply() async throws {
        let env = try TestEnvironment.current()
        let pool = TestThreadPool(threads: 4)
        defer { pool.stop() }
        let direct = RedisConnection(configuration: env.redis(), threadPool: pool.pool)
        let name = TestEnvironment.uniqueName("lost")
        let queue = ReliableQueue(name: name, connection: direct)
        let payloads = (0..<3).map { Array("item-\($0)".utf8) }
        try await queue.push(payloads.map { QueueItem(site: "5", payload: $0) })

        // The consumer talks to Redis through a proxy that swallows the reply to its first take.
        let port = freeLoopbackPort()
        let proxy = try ChildProcess(env.python, [env.fixtures + "/cut_proxy.py", String(port), String(env.redisPort), "{\(name)}:ring"],
                                     captureOutput: true)
        defer { proxy.send(SIGKILL) }
        #expect(await proxy.readLine(timeout: .seconds(10)) == "ready")
        var through = env.redis(socketTimeoutMs: 2_000)
        through.port = port
        let proxied = RedisConnection(configuration: through, threadPool: pool.pool)
        let consumer = QueueConsumer(queue: ReliableQueue(name: name, connection: proxied), consumerID: QueueConsumer.makeID(prefix: "lost"),
                                     blockingConnection: RedisConnection(configuration: through, threadPool: pool.pool),
                                     configuration: .init(maxItemsPerTurn: 10, leaseMs: 60_000, idleWaitSeconds: 0.2))
        try await consumer.renewLease()

        await #expect(throws: RedisError.self) { _ = try await consumer.take() }
        // The script ran: the items sit in this live consumer's in-flight list, out of the queue.
        let inflightKey = QueueKeys(name: name).inflight(consumer.consumerID)
        #expect(try await direct.send("LLEN", inflightKey).integer == 3)
        #expect(try await queue.totalDepth() == 0)

        // The next take gives them back first, then takes them: each is held once.
        var taken: [QueueItem] = []
        _ = await eventually(timeout: .seconds(10)) {
            if let items = try? await consumer.take() { taken += items }
            return taken.count >= 3
        }
        #expect(taken.map(\.payload) == payloads)
        #expect(try await direct.send("LLEN", inflightKey).integer == 3)
        try await consumer.ack(taken)
        #expect(try await direct.send("LLEN", inflightKey).integer == 0)
        #expect(try await queue.totalDepth() == 0)
        #expect(try await queue.depths().isEmpty)
        #expect(try await consumer.take().isEmpty)
    }
}
