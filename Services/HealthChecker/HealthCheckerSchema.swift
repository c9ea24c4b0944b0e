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
        Migration(version: 2, name: "receivers_incidents_notifications_canaries", sql: """
            -- check_results keeps each check's transitions (ok ↔ failing), not every run.
            ALTER TABLE health.check_results ADD COLUMN status text NOT NULL DEFAULT 'ok',
                ADD COLUMN summary text NOT NULL DEFAULT '';
            CREATE INDEX check_results_age ON health.check_results (ran_at);

            -- Where alerts go. The PagerDuty routing key stays in its file.
            CREATE TABLE health.receivers (
                receiver_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
                type text NOT NULL CHECK (type IN ('slack', 'pagerduty', 'webhook')),
                url text NOT NULL,
                routing_key_file text,
                allow_private_network boolean NOT NULL DEFAULT false,
                min_severity text NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('warning', 'critical')),
                created_at timestamptz NOT NULL DEFAULT now()
            );

            -- One row per failure episode of a check: opened as a warning, maybe escalated,
            -- resolved. An open incident survives a restart of the health-checker.
            CREATE TABLE health.incidents (
                incident_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                check_name text NOT NULL,
                severity text NOT NULL CHECK (severity IN ('warning', 'critical')),
                summary text NOT NULL,
                detail jsonb NOT NULL DEFAULT '{}',
                opened_at timestamptz NOT NULL,
                escalated_at timestamptz,
                resolved_at timestamptz,
                silenced boolean NOT NULL DEFAULT false
            );
            CREATE UNIQUE INDEX incidents_open ON health.incidents (check_name) WHERE resolved_at IS NULL;
            CREATE INDEX incidents_age ON health.incidents (opened_at);

            -- Every notification sent (or that failed), per receiver.
            CREATE TABLE health.notifications (
                notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                incident_id bigint,
                receiver text NOT NULL,
                kind text NOT NULL CHECK (kind IN ('trigger', 'escalate', 'repeat', 'resolve', 'test')),
                severity text NOT NULL,
                check_name text NOT NULL,
                sent_at timestamptz NOT NULL,
                ok boolean NOT NULL,
                status int,
                error text
            );
            CREATE INDEX notifications_age ON health.notifications (sent_at);

            -- Canary events sent through the real collector and followed to the end.
            CREATE TABLE health.canaries (
                site_id bigint NOT NULL,
                message_id text NOT NULL,
                sent_at timestamptz NOT NULL,
                send_status int,
                send_error text,
                received_at timestamptz,
                stored_at timestamptz,
                aggregated_at timestamptz,
                delivered_at timestamptz,
                sinks_expected int,
                sinks_delivered int NOT NULL DEFAULT 0,
                completed_at timestamptz,
                PRIMARY KEY (site_id, message_id)
            );
            CREATE INDEX canaries_sent ON health.canaries (sent_at);
            """),
    ])
}
