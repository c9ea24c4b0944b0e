import Foundation
import TributaryModels
import TributaryPostgres

/// Answers Stats API queries from the rollup tables: one SQL statement per query, grouped
/// and ordered in PostgreSQL, so a 30-day breakdown reads only that dimension's rows.
struct StatsEngine: Sendable {
    let postgres: PostgresClient
    let catalog: SiteCatalog
    let realtime: Realtime
    let configuration: AggregatorConfiguration
    var now: @Sendable () -> Date = { Date() }

    /// A failure with the HTTP status the API answers.
    struct Failure: Error, Sendable {
        var status: Int
        var message: String
    }

    /// Who is asking: the admin token reads every site, a read key only its own.
    enum Caller: Sendable {
        case admin
        case key(String)
        case anonymous
    }

    /// The site a caller may read, or the 401/404 it gets.
    func authorize(_ caller: Caller, site reference: String) throws(Failure) -> SiteCatalog.Site {
        let site = catalog.find(reference)
        switch caller {
        case .anonymous:
            throw Failure(status: 401, message: "send Authorization: Bearer <read key or admin token>")
        case .admin:
            guard let site else { throw Failure(status: 404, message: "no site \(reference)") }
            return site
        case .key(let key):
            guard let site, catalog.isReadKey(key, of: site.id) else {
                throw Failure(status: 401, message: "the key does not open site \(reference)")
            }
            return site
        }
    }

    /// `POST /api/v2/query`: the response body.
    func query(_ body: JSONValue, caller: Caller) async throws -> JSONValue {
        guard let reference = body["site_id"]?.stringValue, !reference.isEmpty else {
            throw Failure(status: 400, message: "site_id is required (the site's name or id, as a string)")
        }
        let site = try authorize(caller, site: reference)
        let clock = LocalClock(identifier: site.timeZone)
        var firstDataDay: Int32?
        if body["date_range"]?.stringValue == "all" {
            firstDataDay = try await postgres.query("""
                SELECT (min(day) - date '1970-01-01') AS d FROM aggregator.daily WHERE site_id = $1 AND dim = ''
                """, [site.id]).first?.int("d").map { Int32($0) }
        }
        let query: StatsQuery
        do {
            query = try StatsQuery.parse(body, today: clock.day(now()), props: site.props, firstDataDay: firstDataDay,
                                         maxRangeDays: configuration.maxRangeDays, maxResults: configuration.maxResults)
        } catch {
            throw Failure(status: 400, message: error.description)
        }
        let rows = try await run(query, site: site.id)
        return .object([
            "results": .array(rows),
            "meta": .object([:]),
            "query": echo(query, site: reference, clock: clock),
        ])
    }

    /// `GET /api/v1/stats/realtime/visitors`: distinct visitors in the window.
    func realtimeVisitors(site reference: String, caller: Caller) async throws -> Int64 {
        let site = try authorize(caller, site: reference)
        return try await realtime.count(site: site.id, now: now())
    }

    func run(_ q: StatsQuery, site: Int64) async throws -> [JSONValue] {
        var parameters: [any PostgresEncodable] = [site, LocalClock.dateText(q.firstDay), LocalClock.dateText(q.lastDay)]
        if q.time == .hour {
            parameters = [site, LocalClock.hourText(Int64(q.firstDay) * 24), LocalClock.hourText(Int64(q.lastDay + 1) * 24)]
        } else {
            parameters.append(q.source)
        }
        if let filter = q.filter { parameters.append(PostgresArray.text(filter.values)) }
        func spanParameters(_ plan: (spans: [Spans.Span], days: [Int32])) -> [any PostgresEncodable] {
            [PostgresArray.binary(date: plan.days), PostgresArray.binary(date: plan.spans.map(\.first)),
             PostgresArray.binary(int8: plan.spans.map { Int64($0.days) })]
        }
        let rows: [PostgresRow]
        if Self.readsSpans(q) && q.lastDay - q.firstDay + 1 >= Spans.lengths[0] {
            // The spans listed and the rows read must be of one snapshot: a writer deletes the
            // spans of a day it changes.
            rows = try await postgres.withTransaction { tx in
                try await tx.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                let built = try await Spans.built(tx, site: site, from: q.firstDay, through: q.lastDay)
                let plan = Spans.plan(built: built, first: q.firstDay, last: q.lastDay)
                return try await tx.query(Self.sql(q), parameters + spanParameters(plan) + [q.limit, q.offset]).rows
            }
        } else if Self.readsSpans(q) {
            // Too short a range for any span: its days' rows only, in one statement.
            let plan = Spans.plan(built: [], first: q.firstDay, last: q.lastDay)
            rows = try await postgres.query(Self.sql(q), parameters + spanParameters(plan) + [q.limit, q.offset]).rows
        } else {
            rows = try await postgres.query(Self.sql(q), parameters + [q.limit, q.offset]).rows
        }
        return try rows.map { row in
            var metrics: [JSONValue] = []
            for (i, metric) in q.metrics.enumerated() {
                if metric == .viewsPerVisit {
                    metrics.append(.double(try row.double("m\(i)") ?? 0))
                } else {
                    metrics.append(.int(try row.int("m\(i)") ?? 0))
                }
            }
            var dimensions: [JSONValue] = []
            for name in q.dimensions {
                switch name {
                case "time:day", "time": dimensions.append(.string(LocalClock.dateText(Int32(try row.int("d") ?? 0))))
                case "time:hour": dimensions.append(.string(try row.string("h") ?? ""))
                default: dimensions.append(.string(try row.string("v") ?? ""))
                }
            }
            return .object(["metrics": .array(metrics), "dimensions": .array(dimensions)])
        }
    }

    /// Whether a query reads spans and the days around them (any query without a time
    /// dimension: totals, filtered totals, breakdowns) rather than every day's rows.
    static func readsSpans(_ q: StatsQuery) -> Bool { q.time == nil }

    /// The statement for a query. Parameters: $1 site, $2/$3 the range (days, or local hours
    /// for time:hour), $4 the stored dimension (not for time:hour), then the filter values,
    /// then (when `readsSpans`) the days read from daily rows and the spans' first days and
    /// lengths, then limit and offset.
    static func sql(_ q: StatsQuery) -> String {
        let hourly = q.time == .hour
        var groups: [String] = []
        var select: [String] = []
        if q.time == .day {
            groups.append("day")
            select.append("(day - date '1970-01-01') AS d")
        }
        if hourly {
            groups.append("hour")
            select.append("to_char(hour, 'YYYY-MM-DD HH24:MI:SS') AS h")
        }
        if q.breakdown != nil {
            groups.append("value")
            select.append("value AS v")
        }
        let perDay = q.time == .day
        let visitDim = StatsQuery.visitDims.contains(q.source)
        for (i, metric) in q.metrics.enumerated() {
            let expression: String
            switch metric {
            case .visitors:
                expression = (perDay || hourly) ? "sum(visitors)"
                    : readsSpans(q) ? "sum(visitors) - sum(carried)"
                    : "sum(visitors) - coalesce(sum(visitors_carried) FILTER (WHERE day > $2::date), 0)"
            case .visits: expression = "sum(visits)"
            case .pageviews: expression = visitDim ? "sum(visit_pageviews)" : "sum(pageviews)"
            case .events: expression = "sum(events)"
            case .viewsPerVisit: expression = "round(sum(visit_pageviews)::numeric / nullif(sum(visits), 0), 2)"
            case .bounceRate: expression = "round(100.0 * sum(bounces) / nullif(sum(visits), 0))"
            case .visitDuration: expression = "round(sum(duration)::numeric / nullif(sum(visits), 0))"
            }
            select.append("coalesce(\(expression), 0) AS m\(i)")
        }
        var conditions: [String]
        var next = 4
        if hourly {
            conditions = ["site_id = $1", "hour >= $2::timestamp", "hour < $3::timestamp"]
        } else if readsSpans(q) {
            conditions = []
            next = 5
        } else {
            conditions = ["site_id = $1", "dim = $4", "day >= $2::date", "day <= $3::date"]
            next = 5
        }
        if let filter = q.filter {
            switch filter.op {
            case .is: conditions.append("value = ANY($\(next)::text[])")
            case .isNot: conditions.append("value <> ALL($\(next)::text[])")
            case .contains: conditions.append("EXISTS (SELECT 1 FROM unnest($\(next)::text[]) AS p WHERE strpos(value, p) > 0)")
            }
            next += 1
        }
        var order: [String] = []
        for (name, descending) in q.orderBy {
            let column: String
            if let i = q.metrics.firstIndex(where: { $0.rawValue == name }) {
                column = "m\(i)"
            } else {
                column = name.hasPrefix("time:hour") ? "h" : name.hasPrefix("time") ? "d" : "v"
            }
            order.append("\(column) \(descending ? "DESC" : "ASC")")
        }
        if order.isEmpty {
            if q.time != nil { order.append(hourly ? "h" : "d") }
            if q.breakdown != nil { order.append("m0 DESC") }
        }
        if q.breakdown != nil { order.append("v") }
        var table = hourly ? "aggregator.hourly" : "aggregator.daily"
        if readsSpans(q) {
            table = spanSource(days: next, firsts: next + 1, lengths: next + 2)
            next += 3
        }
        var sql = "SELECT \(select.joined(separator: ", ")) FROM \(table)"
        if !conditions.isEmpty { sql += " WHERE \(conditions.joined(separator: " AND "))" }
        if !groups.isEmpty { sql += " GROUP BY \(groups.joined(separator: ", "))" }
        if q.breakdown != nil {
            // A value whose counts all moved elsewhere (an exit page a visit moved on from) is not listed.
            sql += " HAVING sum(visitors) <> 0 OR sum(visits) <> 0 OR sum(pageviews) <> 0 OR sum(events) <> 0"
        }
        if !order.isEmpty { sql += " ORDER BY \(order.joined(separator: ", "))" }
        sql += " LIMIT $\(next) OFFSET $\(next + 1)"
        return sql
    }

    /// The rows of one breakdown ($4) over the range: the daily rows of the days listed in
    /// $`days` and the rows of the spans listed in $`firsts`/$`lengths`, with `carried` the
    /// carried visitors to subtract (none on the range's first day, $2).
    static func spanSource(days: Int, firsts: Int, lengths: Int) -> String {
        let counts = "visits, pageviews, events, bounces, duration, visit_pageviews"
        return """
            (SELECT value, visitors, CASE WHEN day > $2::date THEN visitors_carried ELSE 0 END AS carried, \(counts)
             FROM aggregator.daily
             WHERE site_id = $1 AND dim = $4 AND day = ANY($\(days)::date[]) AND day BETWEEN $2::date AND $3::date
             UNION ALL
             SELECT s.value, s.visitors, s.visitors_carried - CASE WHEN s.first_day = $2::date THEN s.first_carried ELSE 0 END,
                    \(counts.split(separator: ", ").map { "s.\($0)" }.joined(separator: ", "))
             FROM unnest($\(firsts)::date[], $\(lengths)::bigint[]) AS c(first_day, days)
             JOIN aggregator.spans s ON s.site_id = $1 AND s.first_day = c.first_day AND s.days = c.days AND s.dim = $4) r
            """
    }

    /// The `query` part of the response: the query as understood, dates resolved.
    func echo(_ q: StatsQuery, site: String, clock: LocalClock) -> JSONValue {
        func stamp(_ date: Date, end: Bool) -> String {
            let offset = clock.zone.secondsFromGMT(for: date)
            let sign = offset < 0 ? "-" : "+"
            let hh = abs(offset) / 3600, mm = abs(offset) % 3600 / 60
            let day = LocalClock.dateText(clock.day(date))
            return day + (end ? "T23:59:59" : "T00:00:00") + sign + (hh < 10 ? "0" : "") + String(hh) + ":"
                + (mm < 10 ? "0" : "") + String(mm)
        }
        let start = clock.start(ofDay: q.firstDay)
        let end = clock.start(ofDay: q.lastDay + 1).addingTimeInterval(-1)
        var o: [String: JSONValue] = [
            "site_id": .string(site), "metrics": .array(q.metrics.map { .string($0.rawValue) }),
            "date_range": .array([.string(stamp(start, end: false)), .string(stamp(end, end: true))]),
            "dimensions": .array(q.dimensions.map { .string($0) }),
            "order_by": .array(q.orderBy.map { .array([.string($0.0), .string($0.1 ? "desc" : "asc")]) }),
            "pagination": .object(["limit": .int(Int64(q.limit)), "offset": .int(Int64(q.offset))]),
            "filters": .array([]),
        ]
        if let f = q.filter {
            o["filters"] = .array([.array([.string(f.op.rawValue), .string(f.dimension), .array(f.values.map { .string($0) })])])
        }
        return .object(o)
    }
}
