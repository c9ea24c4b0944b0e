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
        Migration(version: 2, name: "sink_rules_and_delivery_state", sql: """
            -- Routing rules and the destination. Empty arrays mean "any". The secret is never
            -- stored: only the path of the file that holds it.
            ALTER TABLE forwarder.sinks
                ADD COLUMN url text NOT NULL DEFAULT '',
                ADD COLUMN sites bigint[] NOT NULL DEFAULT '{}',
                ADD COLUMN event_types text[] NOT NULL DEFAULT '{}',
                ADD COLUMN event_names text[] NOT NULL DEFAULT '{}',
                ADD COLUMN secret_file text,
                ADD COLUMN allow_private_network boolean NOT NULL DEFAULT false,
                ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
                ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

            -- One row per event delivered to a sink: an event is marked delivered once, and
            -- a redelivered queue item skips what is here.
            CREATE TABLE forwarder.deliveries (
                site_id bigint NOT NULL,
                sink_id bigint NOT NULL,
                event_id bigint NOT NULL,
                message_id text NOT NULL,
                attempts int NOT NULL,
                delivered_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site_id, sink_id, event_id)
            );
            CREATE INDEX deliveries_message ON forwarder.deliveries (site_id, message_id);
            CREATE INDEX deliveries_age ON forwarder.deliveries (delivered_at);

            -- Every request to a sink, one row per site in it.
            CREATE TABLE forwarder.attempts (
                attempt_id bigint GENERATED ALWAYS AS IDENTITY,
                site_id bigint NOT NULL,
                sink_id bigint NOT NULL,
                request_id text NOT NULL,
                attempt int NOT NULL,
                started_at timestamptz NOT NULL,
                latency_ms int NOT NULL,
                status int,
                outcome text NOT NULL CHECK (outcome IN ('delivered', 'partial', 'retry', 'dead', 'sent')),
                error text,
                event_ids bigint[] NOT NULL,
                message_ids text[] NOT NULL,
                PRIMARY KEY (site_id, attempt_id)
            );
            CREATE INDEX attempts_sink_time ON forwarder.attempts (sink_id, started_at);
            CREATE INDEX attempts_age ON forwarder.attempts (started_at);

            -- Events whose delivery failed and will be tried again at next_attempt_at.
            CREATE TABLE forwarder.retries (
                retry_id bigint GENERATED ALWAYS AS IDENTITY,
                site_id bigint NOT NULL,
                sink_id bigint NOT NULL,
                events text NOT NULL,
                event_count int NOT NULL,
                attempts int NOT NULL,
                first_attempt_at timestamptz NOT NULL,
                next_attempt_at timestamptz NOT NULL,
                last_status int,
                last_error text,
                last_response text,
                PRIMARY KEY (site_id, retry_id)
            );
            CREATE INDEX retries_due ON forwarder.retries (sink_id, next_attempt_at);

            -- Events given up on: rejected by the sink, or still failing after the
            -- configured attempts and age. Kept with the last error until retried or purged.
            CREATE TABLE forwarder.dead_letters (
                dead_letter_id bigint GENERATED ALWAYS AS IDENTITY,
                site_id bigint NOT NULL,
                sink_id bigint NOT NULL,
                event_id bigint NOT NULL,
                message_id text NOT NULL,
                event text NOT NULL,
                reason text NOT NULL CHECK (reason IN ('rejected', 'expired', 'dropped')),
                attempts int NOT NULL,
                first_attempt_at timestamptz NOT NULL,
                dead_at timestamptz NOT NULL DEFAULT now(),
                last_status int,
                last_error text,
                last_response text,
                PRIMARY KEY (site_id, dead_letter_id)
            );
            CREATE INDEX dead_letters_sink_time ON forwarder.dead_letters (sink_id, dead_at);
            CREATE INDEX dead_letters_message ON forwarder.dead_letters (site_id, message_id);

            -- Queue items that were not hydrated batch messages.
            CREATE TABLE forwarder.bad_messages (
                bad_message_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                sink_id bigint NOT NULL,
                site_id bigint NOT NULL,
                reason text NOT NULL,
                raw text NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now()
            );
            """),
    ])
}
