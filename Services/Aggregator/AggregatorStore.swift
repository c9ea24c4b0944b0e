import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of the aggregator schema's ingest side: ledger, interactions, visits and rollups
/// (visitor memberships are `Memberships`).
enum AggregatorStore {
    /// Serialises the aggregation of one site across instances for the transaction.
    static func lockSite(_ tx: PostgresConnection, site: Int64) async throws {
        try await tx.query("SELECT pg_advisory_xact_lock(1095189330, ($1::bigint % 2147483647)::int)", [site])
    }

    /// Claims the batches in the ledger; returns those claimed now (not applied before).
    static func claim(_ tx: PostgresConnection, site: Int64, batches: [Int64]) async throws -> Set<Int64> {
        let rows = try await tx.query("""
            INSERT INTO aggregator.ledger (site_id, batch_id) SELECT $1, b FROM unnest($2::bigint[]) AS b
            ON CONFLICT DO NOTHING RETURNING batch_id
            """, [site, PostgresArray.binary(int8: batches)]).rows
        return Set(try rows.compactMap { try $0.int("batch_id") })
    }

    /// Records each applied batch's counts: (batch, received, applied, ignored, late, pageviews).
    static func recordCounts(_ tx: PostgresConnection, site: Int64,
                             rows: [(batch: Int64, received: Int, applied: Int, ignored: Int, late: Int, pageviews: Int)]) async throws {
        guard !rows.isEmpty else { return }
        try await tx.query("""
            UPDATE aggregator.ledger l SET events_received = x.r, events_applied = x.a, events_ignored = x.i,
                events_late = x.l, pageviews = x.p
            FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS x(b, r, a, i, l, p)
            WHERE l.site_id = $1 AND l.batch_id = x.b
            """, [site, PostgresArray.binary(int8: rows.map(\.batch)), int8(rows.map(\.received)),
                  int8(rows.map(\.applied)), int8(rows.map(\.ignored)),
                  int8(rows.map(\.late)), int8(rows.map(\.pageviews))])
    }

    static let visitColumns = """
        visitor, started_at, last_seen, pageviews, interactions, entry_page, exit_page, source,
        utm_source, utm_medium, utm_campaign, country, browser, os, device
        """

    /// Stores interactions for the visit computation (a repeated one is kept once).
    static func insertEvents(_ tx: PostgresConnection, site: Int64, _ events: [StatEvent]) async throws {
        guard !events.isEmpty else { return }
        try await tx.query("""
            INSERT INTO aggregator.visitor_events (site_id, visitor, at, event_id, pageview, path, source, utm_source,
                utm_medium, utm_campaign, country, browser, os, device, previous_visitor)
            SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::bigint[], $5::boolean[], $6::text[], $7::text[],
                                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
                                     $15::text[])
            ON CONFLICT DO NOTHING
            """, [site, PostgresArray.binary(text: events.map(\.visitor)), PostgresArray.binary(timestamptz: events.map(\.time)),
                  PostgresArray.binary(int8: events.map(\.eventID)), PostgresArray.binary(bool: events.map(\.isPageview)),
                  PostgresArray.binary(text: events.map(\.path)), PostgresArray.binary(text: events.map(\.source)),
                  PostgresArray.binary(text: events.map(\.utmSource)), PostgresArray.binary(text: events.map(\.utmMedium)),
                  PostgresArray.binary(text: events.map(\.utmCampaign)), PostgresArray.binary(text: events.map(\.country)),
                  PostgresArray.binary(text: events.map(\.browser)), PostgresArray.binary(text: events.map(\.os)),
                  PostgresArray.binary(text: events.map(\.device)), PostgresArray.binary(text: events.map(\.previousVisitor))])
    }

    /// The links of these hashes made by visits that crossed UTC midnight, as (hash, previous
    /// hash) pairs: the previous hashes their interactions carry, and the hashes whose
    /// interactions carry one of them as previous. (Both read partial indexes: only events of
    /// the minutes after midnight carry a previous hash.)
    static func links(_ db: PostgresConnection, site: Int64, _ hashes: Set<String>) async throws -> [(String, String)] {
        guard !hashes.isEmpty else { return [] }
        let rows = try await db.query("""
            SELECT DISTINCT visitor, previous_visitor FROM aggregator.visitor_events
            WHERE site_id = $1 AND visitor = ANY($2::text[]) AND previous_visitor IS NOT NULL
            UNION
            SELECT DISTINCT visitor, previous_visitor FROM aggregator.visitor_events
            WHERE site_id = $1 AND previous_visitor = ANY($2::text[])
            """, [site, PostgresArray.binary(text: Array(hashes))]).rows
        return try rows.compactMap { row in
            guard let hash = try row.string("visitor"), let previous = try row.string("previous_visitor") else { return nil }
            return (hash, previous)
        }
    }

    /// The stored interactions of each hash within its own window.
    static func events(_ db: PostgresConnection, site: Int64,
                       windows: [(hash: String, window: ClosedRange<Date>)]) async throws -> [StatEvent] {
        guard !windows.isEmpty else { return [] }
        let rows = try await db.query("""
            SELECT e.visitor, e.at, e.event_id, e.pageview, e.path, e.source, e.utm_source, e.utm_medium, e.utm_campaign,
                   e.country, e.browser, e.os, e.device, e.previous_visitor
            FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) AS w(visitor, lo, hi)
            JOIN aggregator.visitor_events e ON e.site_id = $1 AND e.visitor = w.visitor AND e.at >= w.lo AND e.at <= w.hi
            """, [site, PostgresArray.binary(text: windows.map(\.hash)),
                  PostgresArray.binary(timestamptz: windows.map(\.window.lowerBound)),
                  PostgresArray.binary(timestamptz: windows.map(\.window.upperBound))]).rows
        return try rows.map { row in
            var e = StatEvent(eventID: try row.int("event_id") ?? 0, type: try row.bool("pageview") == true ? .page : .track,
                              name: nil, time: try row.date("at") ?? Date(), visitor: try row.string("visitor") ?? "",
                              previousVisitor: try row.string("previous_visitor"), enrichment: [:], properties: nil, props: [])
            e.path = try row.string("path")
            e.source = try row.string("source")
            e.utmSource = try row.string("utm_source")
            e.utmMedium = try row.string("utm_medium")
            e.utmCampaign = try row.string("utm_campaign")
            e.country = try row.string("country")
            e.browser = try row.string("browser")
            e.os = try row.string("os")
            e.device = try row.string("device")
            return e
        }
    }

    /// Every stored visit that counts for one of these hashes.
    static func visits(_ db: PostgresConnection, site: Int64, hashes: Set<String>) async throws -> [Session] {
        guard !hashes.isEmpty else { return [] }
        let rows = try await db.query("""
            SELECT \(visitColumns) FROM aggregator.visits WHERE site_id = $1 AND visitor = ANY($2::text[])
            """, [site, PostgresArray.binary(text: Array(hashes))]).rows
        return try rows.map { row in
            Session(visitor: try row.string("visitor") ?? "", start: try row.date("started_at") ?? Date(),
                    last: try row.date("last_seen") ?? Date(), pageviews: try row.int("pageviews") ?? 0,
                    interactions: try row.int("interactions") ?? 0, entryPage: try row.string("entry_page"),
                    exitPage: try row.string("exit_page"), source: try row.string("source"),
                    utmSource: try row.string("utm_source"), utmMedium: try row.string("utm_medium"),
                    utmCampaign: try row.string("utm_campaign"), country: try row.string("country"),
                    browser: try row.string("browser"), os: try row.string("os"), device: try row.string("device"))
        }
    }

    /// Replaces stored visits by recomputed ones.
    static func replaceVisits(_ tx: PostgresConnection, site: Int64, _ change: VisitChange) async throws {
        if !change.removed.isEmpty {
            try await tx.query("""
                DELETE FROM aggregator.visits v USING unnest($2::text[], $3::timestamptz[]) AS k(visitor, started_at)
                WHERE v.site_id = $1 AND v.visitor = k.visitor AND v.started_at = k.started_at
                """, [site, PostgresArray.binary(text: change.removed.map(\.visitor)),
                      PostgresArray.binary(timestamptz: change.removed.map(\.start))])
        }
        guard !change.added.isEmpty else { return }
        let s = change.added
        try await tx.query("""
            INSERT INTO aggregator.visits (site_id, \(visitColumns))
            SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[],
                                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                                     $14::text[], $15::text[], $16::text[])
            """, [site, PostgresArray.binary(text: s.map(\.visitor)),
                  PostgresArray.binary(timestamptz: s.map(\.start)), PostgresArray.binary(timestamptz: s.map(\.last)),
                  int8(s.map(\.pageviews)), int8(s.map(\.interactions)),
                  PostgresArray.binary(text: s.map(\.entryPage)), PostgresArray.binary(text: s.map(\.exitPage)),
                  PostgresArray.binary(text: s.map(\.source)), PostgresArray.binary(text: s.map(\.utmSource)),
                  PostgresArray.binary(text: s.map(\.utmMedium)), PostgresArray.binary(text: s.map(\.utmCampaign)),
                  PostgresArray.binary(text: s.map(\.country)), PostgresArray.binary(text: s.map(\.browser)),
                  PostgresArray.binary(text: s.map(\.os)), PostgresArray.binary(text: s.map(\.device))])
    }

    /// Maps breakdown keys to the row they count in: their own when it exists or the
    /// day's breakdown of that dimension has room, else the day's "(other)" row.
    static func resolve(_ db: PostgresConnection, site: Int64, keys: Set<DayKey>, limit: Int) async throws -> [DayKey: DayKey] {
        let foldable = keys.filter { Dim.folds($0.dim) && $0.value != Dim.other }
        guard !foldable.isEmpty else { return [:] }
        let list = Array(foldable)
        let existing = try await db.query("""
            SELECT (d.day - date '1970-01-01') AS day, d.dim, d.value FROM aggregator.daily d
            JOIN unnest($2::date[], $3::text[], $4::text[]) AS k(day, dim, value)
              ON d.day = k.day AND d.dim = k.dim AND d.value = k.value
            WHERE d.site_id = $1
            """, [site, PostgresArray.binary(date: list.map(\.day)), PostgresArray.binary(text: list.map(\.dim)),
                  PostgresArray.binary(text: list.map(\.value))]).rows
        var known: Set<DayKey> = []
        for row in existing {
            known.insert(DayKey(day: Int32(try row.int("day") ?? 0), dim: try row.string("dim") ?? "",
                                value: try row.string("value") ?? ""))
        }
        let fresh = foldable.subtracting(known).sorted { ($0.day, $0.dim, $0.value) < ($1.day, $1.dim, $1.value) }
        guard !fresh.isEmpty else { return [:] }
        let groups = Array(Set(fresh.map { DayKey(day: $0.day, dim: $0.dim, value: "") }))
        let sizes = try await db.query("""
            SELECT (d.day - date '1970-01-01') AS day, d.dim, count(*) FILTER (WHERE d.value <> '(other)') AS n
            FROM aggregator.daily d JOIN unnest($2::date[], $3::text[]) AS k(day, dim) ON d.day = k.day AND d.dim = k.dim
            WHERE d.site_id = $1 GROUP BY 1, 2
            """, [site, PostgresArray.binary(date: groups.map(\.day)), PostgresArray.binary(text: groups.map(\.dim))]).rows
        var used: [DayKey: Int] = [:]
        for row in sizes {
            used[DayKey(day: Int32(try row.int("day") ?? 0), dim: try row.string("dim") ?? "", value: "")] =
                Int(try row.int("n") ?? 0)
        }
        var mapping: [DayKey: DayKey] = [:]
        for key in fresh {
            let group = DayKey(day: key.day, dim: key.dim, value: "")
            if used[group, default: 0] < limit {
                used[group, default: 0] += 1
            } else {
                mapping[key] = DayKey(day: key.day, dim: key.dim, value: Dim.other)
            }
        }
        return mapping
    }

    /// Adds counts to the daily rows (created as needed).
    static func addDaily(_ tx: PostgresConnection, site: Int64, _ rows: [DayKey: Counts]) async throws {
        let entries = rows.filter { !$0.value.isZero }
        guard !entries.isEmpty else { return }
        let keys = Array(entries.keys)
        let c = keys.map { entries[$0]! }
        try await tx.query("""
            INSERT INTO aggregator.daily AS d (site_id, day, dim, value, visitors, visitors_carried, visits, pageviews, events,
                                               bounces, duration, visit_pageviews)
            SELECT $1, * FROM unnest($2::date[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                                     $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
            ON CONFLICT (site_id, day, dim, value) DO UPDATE SET visitors = d.visitors + EXCLUDED.visitors,
                visitors_carried = d.visitors_carried + EXCLUDED.visitors_carried, visits = d.visits + EXCLUDED.visits,
                pageviews = d.pageviews + EXCLUDED.pageviews, events = d.events + EXCLUDED.events,
                bounces = d.bounces + EXCLUDED.bounces, duration = d.duration + EXCLUDED.duration,
                visit_pageviews = d.visit_pageviews + EXCLUDED.visit_pageviews
            """, [site, PostgresArray.binary(date: keys.map(\.day)), PostgresArray.binary(text: keys.map(\.dim)),
                  PostgresArray.binary(text: keys.map(\.value))] + countArrays(c, carried: true))
        // A row whose counts all moved elsewhere (a visit recomputed into another) gives its slot back.
        let shrunk = keys.filter { entries[$0]!.hasNegative }
        guard !shrunk.isEmpty else { return }
        try await tx.query("""
            DELETE FROM aggregator.daily d USING unnest($2::date[], $3::text[], $4::text[]) AS k(day, dim, value)
            WHERE d.site_id = $1 AND d.dim = k.dim AND d.day = k.day AND d.value = k.value AND d.visitors = 0
              AND d.visitors_carried = 0 AND d.visits = 0 AND d.pageviews = 0 AND d.events = 0 AND d.bounces = 0
              AND d.duration = 0 AND d.visit_pageviews = 0
            """, [site, PostgresArray.binary(date: shrunk.map(\.day)), PostgresArray.binary(text: shrunk.map(\.dim)),
                  PostgresArray.binary(text: shrunk.map(\.value))])
    }

    /// Adds counts to the hourly rows (created as needed).
    static func addHourly(_ tx: PostgresConnection, site: Int64, _ rows: [Int64: Counts]) async throws {
        let entries = rows.filter { !$0.value.isZero }
        guard !entries.isEmpty else { return }
        let keys = Array(entries.keys)
        let c = keys.map { entries[$0]! }
        try await tx.query("""
            INSERT INTO aggregator.hourly AS h (site_id, hour, visitors, visits, pageviews, events, bounces, duration,
                                                visit_pageviews)
            SELECT $1, * FROM unnest($2::timestamp[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                                     $8::bigint[], $9::bigint[])
            ON CONFLICT (site_id, hour) DO UPDATE SET visitors = h.visitors + EXCLUDED.visitors,
                visits = h.visits + EXCLUDED.visits, pageviews = h.pageviews + EXCLUDED.pageviews,
                events = h.events + EXCLUDED.events, bounces = h.bounces + EXCLUDED.bounces,
                duration = h.duration + EXCLUDED.duration, visit_pageviews = h.visit_pageviews + EXCLUDED.visit_pageviews
            """, [site, PostgresArray.binary(timestamp: keys.map { $0 * 3_600 })] + countArrays(c, carried: false))
        let shrunk = keys.filter { entries[$0]!.hasNegative }
        guard !shrunk.isEmpty else { return }
        try await tx.query("""
            DELETE FROM aggregator.hourly h USING unnest($2::timestamp[]) AS k(hour)
            WHERE h.site_id = $1 AND h.hour = k.hour AND h.visitors = 0 AND h.visits = 0 AND h.pageviews = 0
              AND h.events = 0 AND h.bounces = 0 AND h.duration = 0 AND h.visit_pageviews = 0
            """, [site, PostgresArray.binary(timestamp: shrunk.map { $0 * 3_600 })])
    }

    private static func countArrays(_ c: [Counts], carried: Bool) -> [any PostgresEncodable] {
        var out: [any PostgresEncodable] = [int8(c.map(\.visitors))]
        if carried { out.append(int8(c.map(\.carried))) }
        out += [int8(c.map(\.visits)), int8(c.map(\.pageviews)), int8(c.map(\.events)), int8(c.map(\.bounces)),
                int8(c.map(\.duration)), int8(c.map(\.visitPageviews))]
        return out
    }

    private static func int8(_ values: [some BinaryInteger]) -> PostgresValue {
        PostgresArray.binary(int8: values.map { Int64($0) })
    }
}
