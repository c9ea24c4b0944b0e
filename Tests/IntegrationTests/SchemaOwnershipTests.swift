import Collector
import Aggregator
import Forwarder
import HealthChecker
import Hydration
import Testing
import TributaryPostgres
import TributaryRuntime
import TributaryTesting

@Suite("Schemas, roles and migrations", .serialized)
struct SchemaOwnershipTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 4)

    init() throws {
        env = try TestEnvironment.current()
    }

    func connection(_ daemon: DaemonName) -> PostgresConnection {
        PostgresConnection(configuration: env.postgres(role: daemon.defaultRole), threadPool: pool.pool)
    }

    static let migrators: [(DaemonName, Migrator)] = [
        (.collector, CollectorSchema.migrator), (.hydration, HydrationSchema.migrator),
        (.aggregator, AggregatorSchema.migrator), (.forwarder, ForwarderSchema.migrator),
        (.healthChecker, HealthCheckerSchema.migrator),
    ]

    @Test("each daemon migrates its own schema as its own role, idempotently")
    func migrateOwnSchemas() async throws {
        for (daemon, migrator) in Self.migrators {
            let db = connection(daemon)
            _ = try await migrator.migrate(using: db)
            let again = try await migrator.migrate(using: db)
            #expect(again.applied.isEmpty)
            #expect(again.currentVersion == migrator.migrations.count)
        }
    }

    /// Tables that are not per-site data: Citus reference tables (copied to every node) or
    /// local bookkeeping. Every other table must be distributable by `site_id`.
    static let referenceTables: Set<String> = [
        "collector.sites", "collector.write_keys", "forwarder.sinks", "health.receivers", "health.incidents",
        "health.notifications", "health.check_results",
        "collector.schema_migrations", "hydration.schema_migrations", "aggregator.schema_migrations",
        "forwarder.schema_migrations", "health.schema_migrations",
    ]

    @Test("every table of batches, events, ledgers and rollups is keyed by site first (distributable by site on Citus)")
    func siteKeys() async throws {
        for (daemon, migrator) in Self.migrators { _ = try await migrator.migrate(using: connection(daemon)) }
        let rows = try await connection(.collector).query("""
            SELECT n.nspname || '.' || c.relname AS name,
                   (SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = c.oid AND i.indisprimary) AS first_key,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'site_id' AND NOT a.attisdropped) AS has_site
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('collector', 'hydration', 'aggregator', 'forwarder', 'health')
              AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY 1
            """).rows
        #expect(rows.count > 20)
        var distributed = 0
        for row in rows {
            let name = try row.string("name") ?? ""
            guard !Self.referenceTables.contains(name) else { continue }
            distributed += 1
            if name.hasSuffix(".bad_messages") {
                // Kept for people to read, no key: distributed by its site_id column.
                #expect(try row.bool("has_site") == true, "\(name) has no site_id")
                continue
            }
            #expect(try row.string("first_key") == "site_id",
                    "\(name): its primary key must start with site_id (or list it in referenceTables with the reason)")
        }
        #expect(distributed >= 15)
    }

    @Test("a daemon's role cannot write another daemon's schema, but can read it")
    func cannotWriteOthersSchema() async throws {
        for (daemon, migrator) in Self.migrators { _ = try await migrator.migrate(using: connection(daemon)) }
        let hydration = connection(.hydration)
        let insert = await #expect(throws: PostgresError.self) {
            try await hydration.query("INSERT INTO collector.sites (name) VALUES ($1)", ["intruder"])
        }
        #expect(insert?.isInsufficientPrivilege == true)
        let create = await #expect(throws: PostgresError.self) {
            try await hydration.query("CREATE TABLE collector.intruder (id bigint)")
        }
        #expect(create?.isInsufficientPrivilege == true)
        let drop = await #expect(throws: PostgresError.self) {
            try await hydration.query("DROP TABLE collector.sites")
        }
        #expect(drop?.sqlState == "42501")
        let publicTable = await #expect(throws: PostgresError.self) {
            try await hydration.query("CREATE TABLE public.intruder (id bigint)")
        }
        #expect(publicTable?.isInsufficientPrivilege == true)
        // Reading another schema is allowed.
        _ = try await hydration.query("SELECT count(*) FROM collector.sites")
        // Each role can write its own schema.
        let forwarder = connection(.forwarder)
        let name = TestEnvironment.uniqueName("sink")
        try await forwarder.query("INSERT INTO forwarder.sinks (name, type) VALUES ($1, 'webhook')", [name])
        try await forwarder.query("DELETE FROM forwarder.sinks WHERE name = $1", [name])
    }

    @Test("a migration edited after it was applied is refused")
    func appendOnly() async throws {
        let admin = PostgresConnection(configuration: env.postgres(), threadPool: pool.pool)
        let schema = TestEnvironment.uniqueLetters("edited")
        try await admin.query("CREATE SCHEMA \(schema)")
        let original = Migrator(schema: schema, migrations: [
            Migration(version: 1, name: "one", sql: "CREATE TABLE \(schema).t (id bigint)"),
        ])
        #expect(try await original.migrate(using: admin).applied == [1])
        let edited = Migrator(schema: schema, migrations: [
            Migration(version: 1, name: "one", sql: "CREATE TABLE \(schema).t (id bigint, extra text)"),
        ])
        let error = await #expect(throws: MigrationError.self) { _ = try await edited.migrate(using: admin) }
        #expect(error?.kind == .changedAfterApplied)
        let older = Migrator(schema: schema, migrations: [])
        let ahead = await #expect(throws: MigrationError.self) { _ = try await older.migrate(using: admin) }
        #expect(ahead?.kind == .databaseAhead)
    }

    @Test("concurrent migrators apply each migration once")
    func concurrentMigrators() async throws {
        let admin = PostgresConnection(configuration: env.postgres(), threadPool: pool.pool)
        let schema = TestEnvironment.uniqueLetters("concurrent")
        try await admin.query("CREATE SCHEMA \(schema)")
        let migrator = Migrator(schema: schema, migrations: [
            Migration(version: 1, name: "one", sql: "CREATE TABLE \(schema).t (id bigint PRIMARY KEY)"),
            Migration(version: 2, name: "two", sql: "INSERT INTO \(schema).t VALUES (1)"),
        ])
        let reports = try await withThrowingTaskGroup(of: Migrator.Report.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await migrator.migrate(using: PostgresConnection(configuration: env.postgres(), threadPool: pool.pool))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.flatMap(\.applied).sorted() == [1, 2])
        #expect(try await admin.query("SELECT count(*) AS n FROM \(schema).t").first?.int("n") == 1)
    }
}
