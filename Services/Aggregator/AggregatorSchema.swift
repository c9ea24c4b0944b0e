import TributaryPostgres

/// The migrations of the `aggregator` schema, which only the `aggregator` daemon writes.
/// Ordered and append-only: add a new migration, never edit an applied one.
public enum AggregatorSchema {
    public static let migrator = Migrator(schema: "aggregator", migrations: [
        Migration(version: 1, name: "create_ledger", sql: """
            CREATE TABLE aggregator.ledger (
                site_id bigint NOT NULL,
                batch_id bigint NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                events_applied bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, batch_id)
            );
            """),
    ])
}
