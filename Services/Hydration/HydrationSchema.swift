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
        Migration(version: 2, name: "create_events_dedup_failures_traits", sql: """
            ALTER TABLE hydration.ledger
                ADD COLUMN events_received bigint NOT NULL DEFAULT 0,
                ADD COLUMN routed jsonb NOT NULL DEFAULT '{}';
            -- Accepted, enriched events; partitioned by week of receipt, created ahead
            -- and dropped after the retention by the daemon.
            CREATE TABLE hydration.events (
                site_id bigint NOT NULL,
                event_id bigint NOT NULL,
                received_at timestamptz NOT NULL,
                batch_id bigint NOT NULL,
                message_id text NOT NULL,
                type text NOT NULL,
                name text,
                user_id text,
                anonymous_id text,
                event_time timestamptz NOT NULL,
                original_timestamp text,
                sent_at text,
                visitor_hash text NOT NULL,
                properties jsonb,
                traits jsonb,
                context jsonb,
                enrichment jsonb NOT NULL,
                metric jsonb,
                flags text NOT NULL DEFAULT '',
                PRIMARY KEY (site_id, event_id, received_at)
            ) PARTITION BY RANGE (received_at);
            CREATE INDEX events_batch ON hydration.events (site_id, batch_id);
            CREATE INDEX events_message ON hydration.events (site_id, message_id);
            -- The deduplication window: one row per (site, messageId) first seen in it.
            CREATE TABLE hydration.message_ids (
                site_id bigint NOT NULL,
                message_id text NOT NULL,
                first_seen timestamptz NOT NULL,
                batch_id bigint NOT NULL,
                PRIMARY KEY (site_id, message_id)
            );
            CREATE INDEX message_ids_first_seen ON hydration.message_ids (first_seen);
            -- Events that failed validation, with the rule and field, never dropped silently.
            CREATE TABLE hydration.failed_events (
                site_id bigint NOT NULL,
                batch_id bigint NOT NULL,
                position integer NOT NULL,
                received_at timestamptz NOT NULL,
                rule text NOT NULL,
                field text,
                reason text NOT NULL,
                raw text NOT NULL,
                PRIMARY KEY (site_id, batch_id, position)
            );
            -- Queue messages that were not valid raw batches at all.
            CREATE TABLE hydration.bad_messages (
                site_id bigint NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                reason text NOT NULL,
                raw text NOT NULL
            );
            CREATE INDEX bad_messages_site ON hydration.bad_messages (site_id, received_at);
            -- Traits from identify calls, as of each call, so events carry the traits of their time.
            CREATE TABLE hydration.user_traits (
                site_id bigint NOT NULL,
                user_id text NOT NULL,
                valid_from timestamptz NOT NULL,
                traits jsonb NOT NULL,
                PRIMARY KEY (site_id, user_id, valid_from)
            );
            -- alias calls: previousId → userId.
            CREATE TABLE hydration.aliases (
                site_id bigint NOT NULL,
                previous_id text NOT NULL,
                user_id text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site_id, previous_id)
            );
            """),
        Migration(version: 3, name: "add_previous_visitor_hash", sql: """
            -- The visitor hash under yesterday's salt, set shortly after UTC midnight only,
            -- so the aggregator (and its rebuild) can continue a visit across midnight.
            ALTER TABLE hydration.events ADD COLUMN previous_visitor_hash text;
            """),
        Migration(version: 4, name: "add_integrations_and_sink_counts", sql: """
            -- The client's Segment `integrations` map, so a batch sent on again is routed
            -- to the same sinks by the same rules.
            ALTER TABLE hydration.events ADD COLUMN integrations jsonb;
            """),
        Migration(version: 5, name: "drop_events_message_index", sql: """
            -- An event is found by its message id through hydration.message_ids (whose key it
            -- is, and which names the batch) and the events' (site_id, batch_id) index: a second
            -- index on random message ids made every stored event cost one more random insert.
            DROP INDEX hydration.events_message;
            """),
        Migration(version: 6, name: "message_ids_first_seen_brin", sql: """
            -- Rows arrive in first_seen order, so a BRIN index serves the pruning of old rows
            -- as well as a btree did, at almost no cost per insert.
            DROP INDEX hydration.message_ids_first_seen;
            CREATE INDEX message_ids_first_seen ON hydration.message_ids USING brin (first_seen);
            """),
        Migration(version: 7, name: "byte_collation_keys", sql: """
            -- Keys compare byte by byte: every event's deduplication probes message_ids, and a
            -- linguistic collation costs several times as much as memcmp for nothing here.
            -- (Rewrites the tables once.)
            ALTER TABLE hydration.message_ids ALTER COLUMN message_id TYPE text COLLATE "C";
            ALTER TABLE hydration.user_traits ALTER COLUMN user_id TYPE text COLLATE "C";
            ALTER TABLE hydration.aliases ALTER COLUMN previous_id TYPE text COLLATE "C",
                ALTER COLUMN user_id TYPE text COLLATE "C";
            """),
        Migration(version: 8, name: "ledger_event_id_range", sql: """
            -- A batch's events are found through its ledger row: their ids lie between the
            -- first and last id it was given (a range scan of the events' primary key, with
            -- the batch id checked), so hydration.events needs no (site_id, batch_id) index,
            -- which cost every stored event one more index insert (about a tenth of
            -- PostgreSQL's time per event). Batches stored before are filled in from the
            -- index, once, before it goes. NULL: the batch stored no event.
            ALTER TABLE hydration.ledger ADD COLUMN first_event_id bigint, ADD COLUMN last_event_id bigint;
            UPDATE hydration.ledger l SET first_event_id = r.lo, last_event_id = r.hi
            FROM (SELECT site_id, batch_id, min(event_id) AS lo, max(event_id) AS hi
                  FROM hydration.events GROUP BY site_id, batch_id) r
            WHERE l.site_id = r.site_id AND l.batch_id = r.batch_id;
            DROP INDEX hydration.events_batch;
            """),
        Migration(version: 9, name: "ledger_event_id_range_required", sql: """
            -- A hydration of a release before migration 8, still running during a rolling
            -- upgrade, would record a batch's counts without its id range, and that batch's
            -- events could not be found again (resends, the tracer, the forwarder tie). This
            -- refuses it: such a turn fails and rolls back whole, and its batches wait in the
            -- queue for an instance of this release. NOT VALID: rows recorded before are not
            -- checked (a batch whose events the retention dropped keeps its counts, no range).
            ALTER TABLE hydration.ledger ADD CONSTRAINT ledger_event_id_range
                CHECK (events_stored = 0 OR first_event_id IS NOT NULL) NOT VALID;
            """),
        Migration(version: 10, name: "no_statistics_on_free_form_columns", sql: """
            -- No query filters or joins on these columns, so the planner never reads their
            -- statistics; autovacuum's ANALYZE of a week's partition spent more than half its
            -- time sorting their samples (the JSON objects compared key by key). Recurses to
            -- the existing partitions; new ones get the same when they are created.
            \(EventPartitions.withoutStatistics("hydration.events"));
            ALTER TABLE hydration.user_traits ALTER COLUMN traits SET STATISTICS 0;
            """),
    ])
}
