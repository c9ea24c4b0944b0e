import TributaryPostgres

/// The migrations of the `hydration` schema, which only the `hydration` daemon writes.
/// Ordered and append-only: add a new migration, never edit an applied one.
public enum HydrationSchema {
    public static let migrator = Migrator(schema: "hydration", migrations: [
        Migration(version: 1, name: "create_ledger", sql: """
            CREATE TABLE hydration.ledger (
                site_id bigint NOT NULL,
                batch_id bigint NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                events_stored bigint NOT NULL DEFAULT 0,
                events_rejected bigint NOT NULL DEFAULT 0,
                events_duplicate bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, batch_id)
            );
            """),
    ])
}
