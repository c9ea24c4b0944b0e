// A queue consumer the integration tests kill with SIGKILL mid-item.
//
//   tributary-queue-fixture REDIS_PORT PG_PORT QUEUE SCHEMA MODE LEASE_MS
//
// It takes one item, then (MODE `after-commit`) commits the item's effects with the
// ledger handler, or (MODE `before-commit`) does nothing; prints `TAKEN <item>` and
// waits forever without acknowledging, so the test can kill it at that point.
import Foundation
import NIOPosix
import TributaryPostgres
import TributaryRedis
import TributaryTesting

let arguments = CommandLine.arguments
guard arguments.count == 7, let redisPort = Int(arguments[1]), let pgPort = Int(arguments[2]),
      let leaseMs = Int(arguments[6]), ["before-commit", "after-commit"].contains(arguments[5])
else {
    FileHandle.standardError.write(Data("usage: tributary-queue-fixture REDIS_PORT PG_PORT QUEUE SCHEMA before-commit|after-commit LEASE_MS\n".utf8))
    exit(2)
}
let pool = NIOThreadPool(numberOfThreads: 4)
pool.start()
let redis = RedisConnection(configuration: RedisConfiguration(port: redisPort), threadPool: pool)
let consumer = QueueConsumer(
    queue: ReliableQueue(name: arguments[3], connection: redis), consumerID: QueueConsumer.makeID(prefix: "fixture"),
    blockingConnection: RedisConnection(configuration: RedisConfiguration(port: redisPort), threadPool: pool),
    configuration: .init(maxItemsPerTurn: 1, leaseMs: leaseMs, idleWaitSeconds: 0.2))
let postgres = PostgresClient(
    configuration: PostgresConfiguration(port: pgPort, user: "tributary_admin"), maximumConnections: 1, threadPool: pool)

do {
    try await consumer.renewLease()
    var items: [QueueItem] = []
    while items.isEmpty { items = try await consumer.next() }
    if arguments[5] == "after-commit" {
        try await LedgerHandler(postgres: postgres, schema: arguments[4]).handle(items)
    }
    FileHandle.standardOutput.write(Data("TAKEN \(String(decoding: items[0].payload, as: UTF8.self))\n".utf8))
    while true { try await Task.sleep(for: .seconds(3600)) }
} catch {
    FileHandle.standardError.write(Data("fixture failed: \(error)\n".utf8))
    exit(1)
}
