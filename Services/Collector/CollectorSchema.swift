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
        Migration(version: 2, name: "create_write_keys_raw_batches_outbox", sql: """
            ALTER TABLE collector.sites
                ADD COLUMN allowed_origins jsonb NOT NULL DEFAULT '[]',
                ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second > 0),
                ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
            CREATE TABLE collector.write_keys (
                key_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                site_id bigint NOT NULL REFERENCES collector.sites (site_id),
                key_prefix text NOT NULL,
                key_hash text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            );
            CREATE INDEX write_keys_site ON collector.write_keys (site_id);
            -- The source of truth for replay: every acknowledged batch, as received.
            -- Partitioned by day of receipt; partitions are created ahead of time.
            CREATE TABLE collector.raw_batches (
                site_id bigint NOT NULL,
                batch_id bigint NOT NULL,
                received_at timestamptz NOT NULL,
                client_ip text,
                user_agent text,
                event_count integer NOT NULL,
                payload text COMPRESSION lz4 NOT NULL,
                PRIMARY KEY (site_id, batch_id, received_at)
            ) PARTITION BY RANGE (received_at);
            -- Batches saved but not yet known to be enqueued: written in the same
            -- transaction as the batch, deleted after the push to Redis succeeded.
            CREATE TABLE collector.outbox (
                site_id bigint NOT NULL,
                batch_id bigint NOT NULL,
                received_at timestamptz NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site_id, batch_id)
            );
            """),
        Migration(version: 3, name: "sites_keep_raw_ip", sql: """
            -- A site may opt in to keeping its visitors' raw IP addresses downstream.
            ALTER TABLE collector.sites ADD COLUMN keep_raw_ip boolean NOT NULL DEFAULT false;
            """),
        Migration(version: 4, name: "read_keys_and_stats_props", sql: """
            -- Read keys (trr_…) open a site's statistics in the aggregator's API; they never
            -- authorise sending. Stored hashed like write keys, in the same table.
            ALTER TABLE collector.write_keys
                ADD COLUMN kind text NOT NULL DEFAULT 'write' CHECK (kind IN ('write', 'read'));
            -- Custom event properties the aggregator breaks down per day (keys, at most 20).
            ALTER TABLE collector.sites ADD COLUMN stats_props jsonb NOT NULL DEFAULT '[]';
            """),
        Migration(version: 5, name: "sites_store_only", sql: """
            -- A store-only site's events are validated and stored by hydration, and sent
            -- nowhere: neither to the aggregator nor to any sink.
            ALTER TABLE collector.sites ADD COLUMN store_only boolean NOT NULL DEFAULT false;
            """),
        Migration(version: 6, name: "sites_tracker_privacy", sql: """
            -- The browser tracker's privacy settings, served to it by GET /v1/settings:
            -- whether it may keep an anonymous id in the browser (off: cookie-less, the
            -- visitor hash does the counting), and whether it honours Do Not Track and
            -- Global Privacy Control (on: such visitors send nothing).
            ALTER TABLE collector.sites
                ADD COLUMN tracker_cookies boolean NOT NULL DEFAULT false,
                ADD COLUMN honor_dnt boolean NOT NULL DEFAULT false;
            """),
    ])
}
