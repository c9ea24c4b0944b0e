import TributaryPostgres

/// The migrations of the `collector` schema, which only the `collector` daemon writes.
/// Ordered and append-only: add a new migration, never edit an applied one.
public enum CollectorSchema {
    public static let migrator = Migrator(schema: "collector", migrations: [
        Migration(version: 1, name: "create_sites", sql: """
            CREATE TABLE collector.sites (
                site_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
                time_zone text NOT NULL DEFAULT 'UTC',
                created_at timestamptz NOT NULL DEFAULT now(),
                disabled_at timestamptz
            );
            """),
    ])
}
