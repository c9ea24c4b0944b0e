import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of the aggregator schema's ingest side: ledger, interactions, visits, visitor
/// memberships and rollups.
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
            """, [site, PostgresArray.ints(batches)]).rows
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
            """, [site, PostgresArray.ints(rows.map(\.batch)), PostgresArray.ints(rows.map(\.received)),
                  PostgresArray.ints(rows.map(\.applied)), PostgresArray.ints(rows.map(\.ignored)),
                  PostgresArray.ints(rows.map(\.late)), PostgresArray.ints(rows.map(\.pageviews))])
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
            """, [site, PostgresArray.text(events.map(\.visitor)), PostgresArray.text(events.map { ISO8601.format($0.time) }),
                  PostgresArray.ints(events.map(\.eventID)),
                  "{" + events.map { $0.isPageview ? "t" : "f" }.joined(separator: ",") + "}",
                  PostgresArray.text(events.map(\.path)), PostgresArray.text(events.map(\.source)),
                  PostgresArray.text(events.map(\.utmSource)), PostgresArray.text(events.map(\.utmMedium)),
                  PostgresArray.text(events.map(\.utmCampaign)), PostgresArray.text(events.map(\.country)),
                  PostgresArray.text(events.map(\.browser)), PostgresArray.text(events.map(\.os)),
                  PostgresArray.text(events.map(\.device)), PostgresArray.text(events.map(\.previousVisitor))])
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
            """, [site, PostgresArray.text(Array(hashes))]).rows
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
            """, [site, PostgresArray.text(windows.map(\.hash)),
                  PostgresArray.text(windows.map { PostgresTime.format($0.window.lowerBound) }),
                  PostgresArray.text(windows.map { PostgresTime.format($0.window.upperBound) })]).rows
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
            """, [site, PostgresArray.text(Array(hashes))]).rows
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
                """, [site, PostgresArray.text(change.removed.map(\.visitor)),
                      PostgresArray.text(change.removed.map { ISO8601.format($0.start) })])
        }
        guard !change.added.isEmpty else { return }
        let s = change.added
        try await tx.query("""
            INSERT INTO aggregator.visits (site_id, \(visitColumns))
            SELECT $1, * FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[], $6::bigint[],
                                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                                     $14::text[], $15::text[], $16::text[])
            """, [site, PostgresArray.text(s.map(\.visitor)),
                  PostgresArray.text(s.map { ISO8601.format($0.start) }), PostgresArray.text(s.map { ISO8601.format($0.last) }),
                  PostgresArray.ints(s.map(\.pageviews)), PostgresArray.ints(s.map(\.interactions)),
                  PostgresArray.text(s.map(\.entryPage)), PostgresArray.text(s.map(\.exitPage)),
                  PostgresArray.text(s.map(\.source)), PostgresArray.text(s.map(\.utmSource)),
                  PostgresArray.text(s.map(\.utmMedium)), PostgresArray.text(s.map(\.utmCampaign)),
                  PostgresArray.text(s.map(\.country)), PostgresArray.text(s.map(\.browser)),
                  PostgresArray.text(s.map(\.os)), PostgresArray.text(s.map(\.device))])
    }

    /// The stored refs of these memberships (absent ones are not returned).
    static func refs(_ db: PostgresConnection, site: Int64, _ members: [Member]) async throws -> [Member: Int64] {
        guard !members.isEmpty else { return [:] }
        let rows = try await db.query("""
            SELECT m.visitor, (m.day - date '1970-01-01') AS day, m.dim, m.value, m.refs FROM aggregator.memberships m
            JOIN unnest($2::text[], $3::date[], $4::text[], $5::text[]) AS k(visitor, day, dim, value)
              ON m.visitor = k.visitor AND m.day = k.day AND m.dim = k.dim AND m.value = k.value
            WHERE m.site_id = $1
            """, [site, PostgresArray.text(members.map(\.visitor)), PostgresArray.text(members.map { LocalClock.dateText($0.key.day) }),
                  PostgresArray.text(members.map(\.key.dim)), PostgresArray.text(members.map(\.key.value))]).rows
        var out: [Member: Int64] = [:]
        for row in rows {
            out[Member(key: DayKey(day: Int32(try row.int("day") ?? 0), dim: try row.string("dim") ?? "",
                                   value: try row.string("value") ?? ""),
                       visitor: try row.string("visitor") ?? "")] = try row.int("refs") ?? 0
        }
        return out
    }

    /// Sets memberships' refs: rows at 0 or below are deleted, others written.
    static func setRefs(_ tx: PostgresConnection, site: Int64, _ refs: [Member: Int64]) async throws {
        let kept = refs.filter { $0.value > 0 }.map { ($0.key, $0.value) }
        let gone = refs.filter { $0.value <= 0 }.map(\.key)
        if !gone.isEmpty {
            try await tx.query("""
                DELETE FROM aggregator.memberships m USING unnest($2::text[], $3::date[], $4::text[], $5::text[]) AS k(visitor, day, dim, value)
                WHERE m.site_id = $1 AND m.visitor = k.visitor AND m.day = k.day AND m.dim = k.dim AND m.value = k.value
                """, [site, PostgresArray.text(gone.map(\.visitor)), PostgresArray.text(gone.map { LocalClock.dateText($0.key.day) }),
                      PostgresArray.text(gone.map(\.key.dim)), PostgresArray.text(gone.map(\.key.value))])
        }
        guard !kept.isEmpty else { return }
        try await tx.query("""
            INSERT INTO aggregator.memberships (site_id, visitor, day, dim, value, refs)
            SELECT $1, * FROM unnest($2::text[], $3::date[], $4::text[], $5::text[], $6::bigint[])
            ON CONFLICT (site_id, visitor, day, dim, value) DO UPDATE SET refs = EXCLUDED.refs
            """, [site, PostgresArray.text(kept.map(\.0.visitor)), PostgresArray.text(kept.map { LocalClock.dateText($0.0.key.day) }),
                  PostgresArray.text(kept.map(\.0.key.dim)), PostgresArray.text(kept.map(\.0.key.value)),
                  PostgresArray.ints(kept.map(\.1))])
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
            """, [site, PostgresArray.text(list.map { LocalClock.dateText($0.day) }), PostgresArray.text(list.map(\.dim)),
                  PostgresArray.text(list.map(\.value))]).rows
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
            """, [site, PostgresArray.text(groups.map { LocalClock.dateText($0.day) }),
                  PostgresArray.text(groups.map(\.dim))]).rows
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

    /// A membership recorded now, with whether the same visitor is in the same row the day
    /// before or after (as stored before this statement; never for hour memberships, which
    /// carry nothing).
    struct NewMember: Sendable {
        var member: Member
        var before: Bool
        var after: Bool
    }

    /// Records the memberships; returns those that are new.
    static func addMembers(_ tx: PostgresConnection, site: Int64, _ members: [Member]) async throws -> [NewMember] {
        guard !members.isEmpty else { return [] }
        let rows = try await tx.query("""
            WITH ins AS (
                INSERT INTO aggregator.memberships (site_id, day, dim, value, visitor)
                SELECT $1, * FROM unnest($2::date[], $3::text[], $4::text[], $5::text[])
                ON CONFLICT DO NOTHING RETURNING day, dim, value, visitor)
            SELECT (i.day - date '1970-01-01') AS day, i.dim, i.value, i.visitor,
                   i.dim <> '@hour' AND EXISTS (SELECT 1 FROM aggregator.memberships v WHERE v.site_id = $1
                           AND v.visitor = i.visitor AND v.day = i.day - 1 AND v.dim = i.dim AND v.value = i.value) AS before,
                   i.dim <> '@hour' AND EXISTS (SELECT 1 FROM aggregator.memberships v WHERE v.site_id = $1
                           AND v.visitor = i.visitor AND v.day = i.day + 1 AND v.dim = i.dim AND v.value = i.value) AS after
            FROM ins i
            """, [site, PostgresArray.text(members.map { LocalClock.dateText($0.key.day) }),
                  PostgresArray.text(members.map(\.key.dim)), PostgresArray.text(members.map(\.key.value)),
                  PostgresArray.text(members.map(\.visitor))]).rows
        return try rows.map { row in
            NewMember(member: Member(key: DayKey(day: Int32(try row.int("day") ?? 0), dim: try row.string("dim") ?? "",
                                                        value: try row.string("value") ?? ""),
                                            visitor: try row.string("visitor") ?? ""),
                      before: try row.bool("before") ?? false, after: try row.bool("after") ?? false)
        }
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
            """, [site, PostgresArray.text(keys.map { LocalClock.dateText($0.day) }), PostgresArray.text(keys.map(\.dim)),
                  PostgresArray.text(keys.map(\.value))] + countArrays(c, carried: true))
        // A row whose counts all moved elsewhere (a visit recomputed into another) gives its slot back.
        let shrunk = keys.filter { entries[$0]!.hasNegative }
        guard !shrunk.isEmpty else { return }
        try await tx.query("""
            DELETE FROM aggregator.daily d USING unnest($2::date[], $3::text[], $4::text[]) AS k(day, dim, value)
            WHERE d.site_id = $1 AND d.dim = k.dim AND d.day = k.day AND d.value = k.value AND d.visitors = 0
              AND d.visitors_carried = 0 AND d.visits = 0 AND d.pageviews = 0 AND d.events = 0 AND d.bounces = 0
              AND d.duration = 0 AND d.visit_pageviews = 0
            """, [site, PostgresArray.text(shrunk.map { LocalClock.dateText($0.day) }), PostgresArray.text(shrunk.map(\.dim)),
                  PostgresArray.text(shrunk.map(\.value))])
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
            """, [site, PostgresArray.text(keys.map(LocalClock.hourText))] + countArrays(c, carried: false))
        let shrunk = keys.filter { entries[$0]!.hasNegative }
        guard !shrunk.isEmpty else { return }
        try await tx.query("""
            DELETE FROM aggregator.hourly h USING unnest($2::timestamp[]) AS k(hour)
            WHERE h.site_id = $1 AND h.hour = k.hour AND h.visitors = 0 AND h.visits = 0 AND h.pageviews = 0
              AND h.events = 0 AND h.bounces = 0 AND h.duration = 0 AND h.visit_pageviews = 0
            """, [site, PostgresArray.text(shrunk.map(LocalClock.hourText))])
    }

    private static func countArrays(_ c: [Counts], carried: Bool) -> [any PostgresEncodable] {
        var out: [any PostgresEncodable] = [PostgresArray.ints(c.map(\.visitors))]
        if carried { out.append(PostgresArray.ints(c.map(\.carried))) }
        out += [PostgresArray.ints(c.map(\.visits)), PostgresArray.ints(c.map(\.pageviews)),
                PostgresArray.ints(c.map(\.events)), PostgresArray.ints(c.map(\.bounces)),
                PostgresArray.ints(c.map(\.duration)), PostgresArray.ints(c.map(\.visitPageviews))]
        return out
    }
}
