import TributaryPostgres

/// The migrations of the `forwarder` schema, which only the `forwarder` daemon writes.
/// Ordered and append-only: add a new migration, never edit an applied one.
public enum ForwarderSchema {
    public static let migrator = Migrator(schema: "forwarder", migrations: [
        Migration(version: 1, name: "create_sinks", sql: """
            CREATE TABLE forwarder.sinks (
                sink_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
                type text NOT NULL CHECK (type IN ('webhook', 'mixpanel', 'segment', 'statsd')),
                created_at timestamptz NOT NULL DEFAULT now(),
                disabled_at timestamptz
            );
            """),
    ])
}
