import Configuration
import Foundation
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRuntime
import TributaryTesting
@testable import Collector

/// The retention of `collector.raw_batches`. Its days are in 2101, after every other suite's
/// batches (so the collectors other suites run never find them expired), and each drop is
/// held to days from 2101 on (so it never drops theirs).
@Suite("Collector: raw batches are dropped after the retention, never while still in the outbox", .serialized)
struct CollectorPartitionTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 2)
    let db: PostgresClient
    let store: RawBatchStore

    init() async throws {
        env = try TestEnvironment.current()
        db = PostgresClient(configuration: env.postgres(role: "tributary_collector"), maximumConnections: 2, threadPool: pool.pool)
        _ = try await db.withConnection { try await CollectorSchema.migrator.migrate(using: $0) }
        store = RawBatchStore(postgres: db)
    }

    func exists(_ name: String) async throws -> Bool {
        try await db.query("SELECT to_regclass($1) IS NOT NULL AS e", ["collector." + name]).rows.first?.bool("e") ?? false
    }

    func save(batch: Int64, at time: String) async throws {
        try await db.query("""
            INSERT INTO collector.raw_batches (site_id, batch_id, received_at, event_count, payload)
            VALUES (999001, $1, $2::timestamptz, 1, '{"batch":[]}')
            """, [batch, time])
    }

    @Test("days wholly older than the retention go; the cutoff's day and a day with outbox rows stay until enqueued")
    func retention() async throws {
        let from = ISO8601.parse("2101-01-01T00:00:00Z")!
        let days = RawBatchStore.days(from: from, through: ISO8601.parse("2101-01-31T00:00:00Z")!)
        try await store.ensurePartitions(for: days)
        try await save(batch: 1, at: "2101-01-01T10:00:00Z")
        try await save(batch: 2, at: "2101-01-02T23:59:59Z")
        try await save(batch: 3, at: "2101-01-31T00:00:00Z")
        // Batch 2 is saved but not yet enqueued. Its outbox row is dated far ahead, so no
        // collector of another suite, scanning for rows older than its grace, picks it up.
        try await db.query("""
            INSERT INTO collector.outbox (site_id, batch_id, received_at, created_at)
            VALUES (999001, 2, '2101-01-02T23:59:59Z', '2100-01-01T00:00:00Z')
            """)
        // 30 days before 2101-03-02T12:00Z is 2101-01-31T12:00Z: every day before 01-31 expires.
        let now = ISO8601.parse("2101-03-02T12:00:00Z")!
        let first = try await store.dropExpired(now: now, retentionDays: 30, notBefore: from, lockTimeoutMs: 10_000)
        #expect(first.held == ["raw_batches_21010102"])
        #expect(first.dropped.count == 29, "01-01 and 01-03 to 01-30")
        #expect(first.dropped.first == "raw_batches_21010101")
        #expect(try await exists("raw_batches_21010101") == false)
        #expect(try await exists("raw_batches_21010102"))
        #expect(try await exists("raw_batches_21010131"), "the day the cutoff falls in is kept whole")
        let left = try await db.query("SELECT batch_id FROM collector.raw_batches WHERE site_id = 999001 ORDER BY 1")
            .rows.map { try $0.int("batch_id") ?? 0 }
        #expect(left == [2, 3])

        // Once the relay has enqueued batch 2 (its outbox row is gone), its day goes too; but
        // not while a query holds the table past the lock timeout: then it waits a pass.
        try await db.query("DELETE FROM collector.outbox WHERE site_id = 999001")
        try await db.withTransaction { tx in
            try await tx.query("LOCK TABLE ONLY collector.raw_batches IN ACCESS SHARE MODE")
            let busy = try await store.dropExpired(now: now, retentionDays: 30, notBefore: from, lockTimeoutMs: 200)
            #expect(busy.deferred == ["raw_batches_21010102"])
            #expect(busy.dropped.isEmpty && busy.held.isEmpty)
        }
        let second = try await store.dropExpired(now: now, retentionDays: 30, notBefore: from, lockTimeoutMs: 10_000)
        #expect(second.dropped == ["raw_batches_21010102"])
        #expect(second.held.isEmpty)
        #expect(try await exists("raw_batches_21010102") == false)

        // A batch saved later into an expired day (a spool drained late) finds its partition made again.
        try await store.ensurePartitions(for: RawBatchStore.days(from: ISO8601.parse("2101-01-05T00:00:00Z")!,
                                                                 through: ISO8601.parse("2101-01-05T00:00:00Z")!))
        try await save(batch: 4, at: "2101-01-05T08:00:00Z")
        #expect(try await store.dropExpired(now: now, retentionDays: 30, notBefore: from, lockTimeoutMs: 10_000).dropped == ["raw_batches_21010105"])
        _ = try await store.dropExpired(now: ISO8601.parse("2101-04-30T00:00:00Z")!, retentionDays: 30, notBefore: from, lockTimeoutMs: 10_000)
        #expect(try await exists("raw_batches_21010131") == false)
        #expect(try await db.query("SELECT count(*) AS n FROM collector.raw_batches WHERE site_id = 999001").rows.first?.int("n") == 0)
    }

    @Test("collector.partitions.retentionDays and .lockTimeoutMs have defaults and refuse what they cannot mean")
    func configuration() throws {
        func read(_ values: [AbsoluteConfigKey: ConfigValue]) throws -> CollectorConfiguration {
            try CollectorConfiguration(reader: ConfigReader(provider: InMemoryProvider(values: values)))
        }
        #expect(try read([:]).partitionRetentionDays == 430)
        #expect(try read(["collector.partitions.retentionDays": 90]).partitionRetentionDays == 90)
        #expect(throws: ConfigurationError.self) { _ = try read(["collector.partitions.retentionDays": 3]) }
        #expect(try read([:]).partitionLockTimeoutMs == 2_000)
        #expect(throws: ConfigurationError.self) { _ = try read(["collector.partitions.lockTimeoutMs": 0]) }
    }
}
