import Foundation
import TributaryPostgres

/// Sums of daily rows over aligned stretches of closed days, so a breakdown over a long
/// range (top pages of 30 days: 30 × up to `breakdownLimit` + 1 rows) reads a few spans
/// and the days around them instead of every day's rows.
///
/// A span of `n` days (`lengths`) starts on a day number divisible by `n`, so two spans are
/// nested or disjoint and the largest built spans inside a range never overlap (`plan`).
/// A span is built from the two halves below it (the shortest from daily rows) only when
/// its last day is `closedAfterDays` before the site's today. Whatever writes a day's daily
/// rows deletes the spans that cover it (`invalidate`) in its own transaction; the builder
/// and every writer hold the site's lock, so a span is always the exact sum of its days.
enum Spans {
    /// Span lengths in days, shortest first: each is twice the one before.
    static let lengths: [Int32] = [2, 4, 8, 16, 32, 64]
    /// A span's last day is at least this many days before the site's today when it is built:
    /// the day before yesterday, whose visits closed a day ago (only late events and
    /// rebuilds change it then).
    static let closedAfterDays: Int32 = 2
    /// A turn that writes only days after (today − this) has no span to invalidate: it
    /// invalidates whatever it writes from yesterday back, one day of margin over
    /// `closedAfterDays` for clocks that disagree.
    static let openDays: Int32 = 1

    /// One span: `days` days from `first` (days since 1970, site time).
    struct Span: Hashable, Sendable, Comparable {
        var first: Int32
        var days: Int32
        var last: Int32 { first + days - 1 }

        static func < (a: Span, b: Span) -> Bool { (a.days, a.first) < (b.days, b.first) }
    }

    /// Whether `day` may start a span of `length` days.
    static func aligned(_ day: Int32, _ length: Int32) -> Bool { ((day % length) + length) % length == 0 }

    /// How to read [first, last]: the largest built spans that fit, and the remaining days.
    static func plan(built: Set<Span>, first: Int32, last: Int32) -> (spans: [Span], days: [Int32]) {
        var spans: [Span] = [], days: [Int32] = []
        var day = first
        while day <= last {
            let fit = lengths.reversed().lazy.map { Span(first: day, days: $0) }
                .first { aligned(day, $0.days) && $0.last <= last && built.contains($0) }
            if let fit {
                spans.append(fit)
                day += fit.days
            } else {
                days.append(day)
                day += 1
            }
        }
        return (spans, days)
    }

    /// The spans within [from, through] not built yet, in an order that builds each one's
    /// halves first.
    static func missing(built: Set<Span>, from: Int32, through: Int32) -> [Span] {
        var have = built
        var out: [Span] = []
        for length in lengths {
            var first = from
            while !aligned(first, length) { first += 1 }
            while first + length - 1 <= through {
                let span = Span(first: first, days: length)
                let halves = halves(of: span)
                if !have.contains(span), length == lengths[0] || (have.contains(halves.0) && have.contains(halves.1)) {
                    out.append(span)
                    have.insert(span)
                }
                first += length
            }
        }
        return out
    }

    static func halves(of span: Span) -> (Span, Span) {
        let half = span.days / 2
        return (Span(first: span.first, days: half), Span(first: span.first + half, days: half))
    }

    /// The spans of `site` built within [from, through].
    static func built(_ db: PostgresConnection, site: Int64, from: Int32, through: Int32) async throws -> Set<Span> {
        let rows = try await db.query("""
            SELECT (first_day - date '1970-01-01') AS f, days FROM aggregator.span_index
            WHERE site_id = $1 AND first_day >= $2::date AND first_day + days - 1 <= $3::date
            """, [site, LocalClock.dateText(from), LocalClock.dateText(through)]).rows
        return Set(try rows.map { Span(first: Int32(try $0.int("f") ?? 0), days: Int32(try $0.int("days") ?? 0)) })
    }

    /// Deletes the spans that cover any of `days` (their index rows and rows). Call in the
    /// transaction that changes those days' daily rows, under the site's lock.
    static func invalidate(_ tx: PostgresConnection, site: Int64, days: Set<Int32>) async throws {
        guard !days.isEmpty else { return }
        try await tx.query("""
            WITH gone AS (
                DELETE FROM aggregator.span_index i USING unnest($2::date[]) AS d(day)
                WHERE i.site_id = $1 AND i.first_day <= d.day AND i.first_day > d.day - $3::int
                  AND i.first_day + i.days > d.day
                RETURNING i.first_day, i.days)
            DELETE FROM aggregator.spans s USING gone
            WHERE s.site_id = $1 AND s.first_day = gone.first_day AND s.days = gone.days
            """, [site, PostgresArray.binary(date: days.sorted()), Int64(lengths.last!)])
    }

    /// Builds one span in `tx` (which holds the site's lock) from daily rows or from its two
    /// halves; returns its row count, or nil when it is built already (by another instance's
    /// janitor) or a half is not (invalidated since it was listed).
    static func build(_ tx: PostgresConnection, site: Int64, _ span: Span) async throws -> Int? {
        let existing = try await tx.query("""
            SELECT 1 FROM aggregator.span_index WHERE site_id = $1 AND first_day = $2::date AND days = $3
            """, [site, LocalClock.dateText(span.first), Int64(span.days)])
        guard existing.rows.isEmpty else { return nil }
        /// The columns after (dim, value): every count summed, `firstCarried` for first_carried.
        func sums(firstCarried: String) -> String {
            """
            sum(visitors), sum(visitors_carried), \(firstCarried), sum(visits), sum(pageviews), sum(events), sum(bounces),
            sum(duration), sum(visit_pageviews)
            """
        }
        let first = LocalClock.dateText(span.first)
        let rows: Int
        if span.days == lengths[0] {
            rows = try await tx.query("""
                INSERT INTO aggregator.spans (site_id, first_day, days, dim, value, visitors, visitors_carried, first_carried,
                                              visits, pageviews, events, bounces, duration, visit_pageviews)
                SELECT $1, $2::date, $3, dim, value,
                       \(sums(firstCarried: "coalesce(sum(visitors_carried) FILTER (WHERE day = $2::date), 0)"))
                FROM aggregator.daily WHERE site_id = $1 AND day >= $2::date AND day < $2::date + $3::int
                GROUP BY dim, value
                """, [site, first, Int64(span.days)]).affectedRows
        } else {
            let (a, b) = halves(of: span)
            let present = try await tx.query("""
                SELECT count(*) AS n FROM aggregator.span_index
                WHERE site_id = $1 AND days = $2 AND first_day IN ($3::date, $4::date)
                """, [site, Int64(a.days), LocalClock.dateText(a.first), LocalClock.dateText(b.first)]).rows.first?.int("n")
            guard present == 2 else { return nil }
            rows = try await tx.query("""
                INSERT INTO aggregator.spans (site_id, first_day, days, dim, value, visitors, visitors_carried, first_carried,
                                              visits, pageviews, events, bounces, duration, visit_pageviews)
                SELECT $1, $2::date, $3, dim, value,
                       \(sums(firstCarried: "coalesce(sum(first_carried) FILTER (WHERE first_day = $2::date), 0)"))
                FROM aggregator.spans WHERE site_id = $1 AND days = $4 AND first_day IN ($2::date, $5::date)
                GROUP BY dim, value
                """, [site, first, Int64(span.days), Int64(a.days), LocalClock.dateText(b.first)]).affectedRows
        }
        try await tx.query("INSERT INTO aggregator.span_index (site_id, first_day, days, rows) VALUES ($1, $2::date, $3, $4)",
                           [site, first, Int64(span.days), Int64(rows)])
        return rows
    }
}
