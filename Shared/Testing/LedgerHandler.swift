import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// A ``QueueHandler`` for tests that applies each item exactly once: in one transaction
/// it inserts the item into a ledger table keyed by the payload, and only if that row is
/// new, increments the item's effect counter. Tables: `<schema>.ledger(item text primary
/// key)` and `<schema>.effects(item text primary key, applied bigint)`.
public struct LedgerHandler: QueueHandler {
    public let postgres: PostgresClient
    public let schema: String

    public init(postgres: PostgresClient, schema: String) {
        self.postgres = postgres
        self.schema = schema
    }

    /// Creates the schema and its two tables.
    public static func createTables(schema: String, using connection: PostgresConnection) async throws {
        try await connection.execute(script: """
            CREATE SCHEMA \(schema);
            CREATE TABLE \(schema).ledger (item text PRIMARY KEY);
            CREATE TABLE \(schema).effects (item text PRIMARY KEY, applied bigint NOT NULL);
            """)
    }

    public func handle(_ items: [QueueItem]) async throws {
        try await postgres.withTransaction { tx in
            for item in items {
                let name = String(decoding: item.payload, as: UTF8.self)
                let inserted = try await tx.query(
                    "INSERT INTO \(schema).ledger (item) VALUES ($1) ON CONFLICT DO NOTHING", [name])
                if inserted.affectedRows == 1 {
                    try await tx.query("""
                        INSERT INTO \(schema).effects (item, applied) VALUES ($1, 1)
                        ON CONFLICT (item) DO UPDATE SET applied = effects.applied + 1
                        """, [name])
                }
            }
        }
    }
}
