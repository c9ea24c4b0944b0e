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
        Migration(version: 2, name: "create_rollups_sessions_visitors", sql: """
            -- What each batch applied: received = applied + ignored (bots, identify/group/alias) + late.
            ALTER TABLE aggregator.ledger
                ADD COLUMN events_received bigint NOT NULL DEFAULT 0,
                ADD COLUMN events_ignored bigint NOT NULL DEFAULT 0,
                ADD COLUMN events_late bigint NOT NULL DEFAULT 0,
                ADD COLUMN pageviews bigint NOT NULL DEFAULT 0;
            -- Per site and local day: totals (dim = '', value = '') and breakdown rows
            -- (dim = 'page', 'entry_page', 'exit_page', 'source', 'utm_source', 'utm_medium',
            -- 'utm_campaign', 'country', 'browser', 'os', 'device', 'name', 'props:<key>').
            -- visitors_carried: of the row's visitors, those also counted in the same row the
            -- day before, so a range's unique visitors are sum(visitors) - sum(carried after its first day).
            CREATE TABLE aggregator.daily (
                site_id bigint NOT NULL,
                day date NOT NULL,
                dim text NOT NULL,
                value text NOT NULL,
                visitors bigint NOT NULL DEFAULT 0,
                visitors_carried bigint NOT NULL DEFAULT 0,
                visits bigint NOT NULL DEFAULT 0,
                pageviews bigint NOT NULL DEFAULT 0,
                events bigint NOT NULL DEFAULT 0,
                bounces bigint NOT NULL DEFAULT 0,
                duration bigint NOT NULL DEFAULT 0,
                visit_pageviews bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, dim, day, value)
            );
            -- Per site and local hour (wall-clock time in the site's zone): totals only.
            CREATE TABLE aggregator.hourly (
                site_id bigint NOT NULL,
                hour timestamp NOT NULL,
                visitors bigint NOT NULL DEFAULT 0,
                visits bigint NOT NULL DEFAULT 0,
                pageviews bigint NOT NULL DEFAULT 0,
                events bigint NOT NULL DEFAULT 0,
                bounces bigint NOT NULL DEFAULT 0,
                duration bigint NOT NULL DEFAULT 0,
                visit_pageviews bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (site_id, hour)
            );
            -- Who was already counted where, so unique visitors stay exact (no sketches): one
            -- row per visitor and (day, dim, value); dim '@hour' has the local hour as value.
            -- Rows of event dimensions ('', '@hour', page, name, props) come from events and
            -- stay; rows of visit dimensions come from visits, refs counting the visits that
            -- put them there. Kept for aggregator.lateEventDays (+2), then pruned.
            CREATE TABLE aggregator.memberships (
                site_id bigint NOT NULL,
                visitor text NOT NULL,
                day date NOT NULL,
                dim text NOT NULL,
                value text NOT NULL,
                refs bigint NOT NULL DEFAULT 1,
                PRIMARY KEY (site_id, visitor, day, dim, value)
            );
            CREATE INDEX memberships_day ON aggregator.memberships (day);
            -- The interactions of each visitor, as the visits are computed from them: a late or
            -- reordered event recomputes its visitor's visits, so visits do not depend on the
            -- order batches arrive in. Kept like memberships.
            CREATE TABLE aggregator.visitor_events (
                site_id bigint NOT NULL,
                visitor text NOT NULL,
                at timestamptz NOT NULL,
                event_id bigint NOT NULL,
                pageview boolean NOT NULL,
                path text,
                source text,
                utm_source text,
                utm_medium text,
                utm_campaign text,
                country text,
                browser text,
                os text,
                device text,
                previous_visitor text,
                PRIMARY KEY (site_id, visitor, at, event_id)
            );
            CREATE INDEX visitor_events_previous ON aggregator.visitor_events (site_id, previous_visitor)
                WHERE previous_visitor IS NOT NULL;
            CREATE INDEX visitor_events_at ON aggregator.visitor_events (at);
            -- The visits as applied to the rollups (a visitor's interactions with no gap over the
            -- session timeout); visitor is the hash the visit counts for (yesterday's, for a
            -- visit that crossed UTC midnight).
            CREATE TABLE aggregator.visits (
                site_id bigint NOT NULL,
                visitor text NOT NULL,
                started_at timestamptz NOT NULL,
                last_seen timestamptz NOT NULL,
                pageviews bigint NOT NULL,
                interactions bigint NOT NULL,
                entry_page text,
                exit_page text,
                source text,
                utm_source text,
                utm_medium text,
                utm_campaign text,
                country text,
                browser text,
                os text,
                device text,
                PRIMARY KEY (site_id, visitor, started_at)
            );
            CREATE INDEX visits_last_seen ON aggregator.visits (last_seen);
            -- Queue messages that were not hydrated batches at all.
            CREATE TABLE aggregator.bad_messages (
                site_id bigint NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now(),
                reason text NOT NULL,
                raw text NOT NULL
            );
            CREATE INDEX bad_messages_site ON aggregator.bad_messages (site_id, received_at);
            """),
        Migration(version: 3, name: "drop_cleanup_indexes", sql: """
            -- The cleanup job finds old rows without them (they are the oldest, first in the
            -- heap); every aggregated event paid for their upkeep.
            DROP INDEX aggregator.memberships_day;
            DROP INDEX aggregator.visitor_events_at;
            DROP INDEX aggregator.visits_last_seen;
            """),
        Migration(version: 4, name: "index_linked_visitor_events", sql: """
            -- A turn looks up the midnight links of its visitors: without this, every stored
            -- interaction of each visitor was read to find the few (the minutes after UTC
            -- midnight) that carry a previous hash.
            CREATE INDEX visitor_events_linked ON aggregator.visitor_events (site_id, visitor)
                WHERE previous_visitor IS NOT NULL;
            """),
        Migration(version: 5, name: "visitor_days_and_byte_collation", sql: """
            -- Memberships grouped per visitor and local day (the hash is salted daily, so a
            -- visitor has a row or two): a turn reads and writes one row per visitor instead of
            -- one per (day, dim, value), with two probes of the days around each new one.
            -- members is JSON text: {"dim": {"value": refs, ...}, ...}.
            CREATE TABLE aggregator.visitor_days (
                site_id bigint NOT NULL,
                visitor text COLLATE "C" NOT NULL,
                day date NOT NULL,
                members text NOT NULL,
                PRIMARY KEY (site_id, visitor, day)
            );
            INSERT INTO aggregator.visitor_days (site_id, visitor, day, members)
            SELECT site_id, visitor, day, json_object_agg(dim, v ORDER BY dim)::text
            FROM (SELECT site_id, visitor, day, dim, json_object_agg(value, refs ORDER BY value) AS v
                  FROM aggregator.memberships GROUP BY 1, 2, 3, 4) d
            GROUP BY 1, 2, 3;
            DROP TABLE aggregator.memberships;
            -- Keys compare byte by byte: every index probe of the ingest path compares them,
            -- and a linguistic collation costs several times as much for nothing here.
            ALTER TABLE aggregator.daily ALTER COLUMN dim TYPE text COLLATE "C",
                ALTER COLUMN value TYPE text COLLATE "C";
            ALTER TABLE aggregator.visitor_events ALTER COLUMN visitor TYPE text COLLATE "C",
                ALTER COLUMN previous_visitor TYPE text COLLATE "C";
            ALTER TABLE aggregator.visits ALTER COLUMN visitor TYPE text COLLATE "C";
            """),
        Migration(version: 6, name: "spans", sql: """
            -- Sums of daily rows over aligned stretches of closed days (see Spans.swift): a
            -- span of n days (n = 2, 4, …, 64) starts on a day number (days since 1970) that
            -- is a multiple of n, and holds per (dim, value) the sums of the daily rows of its
            -- days; first_carried is the carried visitors of its first day alone. A breakdown
            -- over a long range reads a few spans instead of one row set per day. span_index
            -- lists the spans built; whatever writes a day's daily rows deletes the spans that
            -- cover it (index row and rows), in its own transaction, under the site's lock.
            CREATE TABLE aggregator.span_index (
                site_id bigint NOT NULL,
                first_day date NOT NULL,
                days integer NOT NULL,
                rows bigint NOT NULL,
                built_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (site_id, first_day, days)
            );
            CREATE TABLE aggregator.spans (
                site_id bigint NOT NULL,
                first_day date NOT NULL,
                days integer NOT NULL,
                dim text COLLATE "C" NOT NULL,
                value text COLLATE "C" NOT NULL,
                visitors bigint NOT NULL,
                visitors_carried bigint NOT NULL,
                first_carried bigint NOT NULL,
                visits bigint NOT NULL,
                pageviews bigint NOT NULL,
                events bigint NOT NULL,
                bounces bigint NOT NULL,
                duration bigint NOT NULL,
                visit_pageviews bigint NOT NULL,
                PRIMARY KEY (site_id, first_day, days, dim, value)
            );
            """),
    ])
}
