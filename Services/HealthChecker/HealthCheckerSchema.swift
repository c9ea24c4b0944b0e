import TributaryPostgres

/// The migrations of the `health` schema, which only the `health-checker` daemon writes.
/// Ordered and append-only: add a new migration, never edit an applied one.
public enum HealthCheckerSchema {
    public static let migrator = Migrator(schema: "health", migrations: [
        Migration(version: 1, name: "create_check_results", sql: """
            CREATE TABLE health.check_results (
                check_name text NOT NULL,
                ran_at timestamptz NOT NULL DEFAULT now(),
                ok boolean NOT NULL,
                detail jsonb NOT NULL DEFAULT '{}',
                PRIMARY KEY (check_name, ran_at)
            );
            """),
    ])
}
