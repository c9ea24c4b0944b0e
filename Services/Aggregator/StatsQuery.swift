import Foundation
import TributaryModels

/// A Stats API query (`POST /api/v2/query`, Plausible's shape), checked against what the
/// stored rollups can answer exactly. Anything else is a ``StatsQueryError`` naming the
/// metric, dimension or filter, never a silently wrong number.
struct StatsQuery: Sendable {
    enum Metric: String, Sendable, CaseIterable {
        case visitors, visits, pageviews, viewsPerVisit = "views_per_visit", bounceRate = "bounce_rate",
             visitDuration = "visit_duration", events
    }

    /// What a query groups by, besides (optionally) time.
    enum Breakdown: Sendable, Equatable {
        /// A per-day breakdown dimension stored as `dim`.
        case dim(String)

        var stored: String { if case .dim(let d) = self { return d }; return "" }
    }

    enum TimeGrouping: Sendable { case day, hour }

    struct Filter: Sendable {
        enum Operator: String, Sendable { case `is`, isNot = "is_not", contains }
        var op: Operator
        var dimension: String
        var stored: String
        var values: [String]
    }

    var siteReference: String
    var metrics: [Metric]
    var firstDay: Int32
    var lastDay: Int32
    var time: TimeGrouping?
    var breakdown: Breakdown?
    /// The dimensions as asked, in order (for the response rows).
    var dimensions: [String]
    var filter: Filter?
    /// (metric or dimension name, descending).
    var orderBy: [(String, Bool)]
    var limit: Int
    var offset: Int
    /// The body's `date_range` as sent, echoed in `query`.
    var dateRangeText: JSONValue

    /// Dimensions the API knows, and the stored breakdown each reads.
    static let dimensionColumns: [String: String] = [
        "event:page": Dim.page, "visit:entry_page": Dim.entryPage, "visit:exit_page": Dim.exitPage,
        "visit:source": Dim.source, "visit:utm_source": Dim.utmSource, "visit:utm_medium": Dim.utmMedium,
        "visit:utm_campaign": Dim.utmCampaign, "visit:country": Dim.country, "visit:browser": Dim.browser,
        "visit:os": Dim.os, "visit:device": Dim.device, "event:name": Dim.name,
    ]

    /// Visit-level dimensions: their page views are those of the visits.
    static let visitDims: Set<String> = [Dim.entryPage, Dim.exitPage, Dim.source, Dim.utmSource, Dim.utmMedium,
                                         Dim.utmCampaign, Dim.country, Dim.browser, Dim.os, Dim.device]

    /// The metrics each stored breakdown can answer exactly.
    static func supported(_ dim: String) -> Set<Metric> {
        switch dim {
        case "": return Set(Metric.allCases)
        case Dim.page: return [.visitors, .pageviews, .events]
        case Dim.name: return [.visitors, .events]
        case _ where dim.hasPrefix("props:"): return [.visitors, .events]
        default: return [.visitors, .visits, .pageviews, .viewsPerVisit, .bounceRate, .visitDuration]
        }
    }
}

/// Why a query cannot be answered: the API's 400.
struct StatsQueryError: Error, Sendable, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension StatsQuery {
    /// Parses and checks a query body. `today` is the site's local day (for relative ranges),
    /// `firstDataDay` its first day with data (for `all`), `props` its configured property keys.
    static func parse(_ body: JSONValue, today todayDay: Int32, props: [String], firstDataDay: Int32?,
                      maxRangeDays: Int, maxResults: Int) throws(StatsQueryError) -> StatsQuery {
        guard let o = body.objectValue else { throw StatsQueryError("the body must be a JSON object") }
        let known: Set<String> = ["site_id", "metrics", "date_range", "dimensions", "filters", "order_by", "pagination",
                                  "include", "date"]
        if let unknown = o.keys.sorted().first(where: { !known.contains($0) }) {
            throw StatsQueryError("unknown field \(unknown)")
        }
        guard let site = o["site_id"]?.stringValue, !site.isEmpty else {
            throw StatsQueryError("site_id is required (the site's name or id, as a string)")
        }
        guard case .array(let metricValues)? = o["metrics"], !metricValues.isEmpty else {
            throw StatsQueryError("metrics is required: a non-empty array such as [\"visitors\"]")
        }
        var metrics: [Metric] = []
        for value in metricValues {
            guard let name = value.stringValue else { throw StatsQueryError("metrics must be strings") }
            guard let metric = Metric(rawValue: name) else {
                throw StatsQueryError("metric \(name) is not supported; supported: \(Metric.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard !metrics.contains(metric) else { throw StatsQueryError("metric \(name) is listed twice") }
            metrics.append(metric)
        }
        guard let range = o["date_range"] else {
            throw StatsQueryError("date_range is required: day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all or [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")
        }
        let (first, last) = try dateRange(range, today: todayDay, firstDataDay: firstDataDay)
        guard last >= first else { throw StatsQueryError("date_range ends before it starts") }
        guard Int(last - first) < maxRangeDays else {
            throw StatsQueryError("date_range spans \(last - first + 1) days; at most \(maxRangeDays) (aggregator.stats.maxRangeDays)")
        }
        var query = StatsQuery(siteReference: site, metrics: metrics, firstDay: first, lastDay: last, time: nil,
                               breakdown: nil, dimensions: [], filter: nil, orderBy: [], limit: maxResults, offset: 0,
                               dateRangeText: range)
        try query.readDimensions(o["dimensions"], props: props)
        try query.readFilters(o["filters"], props: props)
        try query.readOrder(o["order_by"])
        try query.readPagination(o["pagination"], maxResults: maxResults)
        try query.check()
        return query
    }

    static func dateRange(_ value: JSONValue, today: Int32,
                          firstDataDay: Int32?) throws(StatsQueryError) -> (Int32, Int32) {
        if case .array(let pair) = value {
            guard pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue else {
                throw StatsQueryError("a custom date_range is two dates: [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]")
            }
            guard let first = LocalClock.day(fromText: String(a.prefix(10))),
                  let last = LocalClock.day(fromText: String(b.prefix(10))) else {
                throw StatsQueryError("date_range dates must be YYYY-MM-DD (got \(a), \(b))")
            }
            return (first, last)
        }
        guard let name = value.stringValue else { throw StatsQueryError("date_range must be a string or two dates") }
        let (y, m, _) = LocalClock.civil(Int64(today))
        let monthStart = Int32(LocalClock.daysFromCivil(y, m, 1))
        switch name {
        case "day": return (today, today)
        case "7d": return (today - 6, today)
        case "28d": return (today - 27, today)
        case "30d": return (today - 29, today)
        case "91d": return (today - 90, today)
        case "month": return (monthStart, today)
        case "6mo", "12mo":
            let back: Int64 = name == "6mo" ? 5 : 11
            let months = y * 12 + (m - 1) - back
            return (Int32(LocalClock.daysFromCivil(months / 12, months % 12 + 1, 1)), today)
        case "year": return (Int32(LocalClock.daysFromCivil(y, 1, 1)), today)
        case "all": return (min(firstDataDay ?? today, today), today)
        default:
            throw StatsQueryError("date_range \(name) is not supported: day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all or two dates")
        }
    }

    static func stored(_ dimension: String, props: [String]) throws(StatsQueryError) -> String {
        if let dim = dimensionColumns[dimension] { return dim }
        if dimension.hasPrefix("event:props:") {
            let key = String(dimension.dropFirst("event:props:".count))
            guard props.contains(key) else {
                throw StatsQueryError("dimension \(dimension) is not broken down for this site (collector sites update <site> --stats-prop \(key))")
            }
            return Dim.prop(key)
        }
        throw StatsQueryError("dimension \(dimension) is not supported; supported: time:day, time:hour, \(dimensionColumns.keys.sorted().joined(separator: ", ")), event:props:<key>")
    }

    mutating func readDimensions(_ value: JSONValue?, props: [String]) throws(StatsQueryError) {
        guard let value else { return }
        guard case .array(let items) = value else { throw StatsQueryError("dimensions must be an array of strings") }
        for item in items {
            guard let name = item.stringValue else { throw StatsQueryError("dimensions must be strings") }
            guard !dimensions.contains(name) else { throw StatsQueryError("dimension \(name) is listed twice") }
            switch name {
            case "time:day", "time":
                guard time == nil else { throw StatsQueryError("only one time dimension per query") }
                time = .day
            case "time:hour":
                guard time == nil else { throw StatsQueryError("only one time dimension per query") }
                time = .hour
            case "time:week", "time:month":
                throw StatsQueryError("dimension \(name) is not supported; use time:day")
            default:
                guard breakdown == nil else {
                    throw StatsQueryError("dimension \(name) is not supported together with \(dimensions.last ?? ""): one breakdown dimension per query")
                }
                breakdown = .dim(try Self.stored(name, props: props))
            }
            dimensions.append(name)
        }
    }

    mutating func readFilters(_ value: JSONValue?, props: [String]) throws(StatsQueryError) {
        guard let value else { return }
        guard case .array(let items) = value else { throw StatsQueryError("filters must be an array") }
        guard items.count <= 1 else {
            throw StatsQueryError("filters: at most one filter per query is supported (the rollups are per dimension)")
        }
        guard let item = items.first else { return }
        guard case .array(let parts) = item, parts.count == 3, let opName = parts[0].stringValue,
              let dimension = parts[1].stringValue, case .array(let clauses) = parts[2] else {
            throw StatsQueryError("a filter is [operator, dimension, [values]], e.g. [\"is\", \"visit:country\", [\"US\"]]")
        }
        guard let op = Filter.Operator(rawValue: opName) else {
            throw StatsQueryError("filter operator \(opName) is not supported; supported: is, is_not, contains")
        }
        let values = clauses.compactMap(\.stringValue)
        guard !values.isEmpty, values.count == clauses.count else {
            throw StatsQueryError("filter values must be a non-empty array of strings")
        }
        guard !dimension.hasPrefix("time") else { throw StatsQueryError("filter on \(dimension) is not supported; use date_range") }
        filter = Filter(op: op, dimension: dimension, stored: try Self.stored(dimension, props: props), values: values)
    }

    mutating func readOrder(_ value: JSONValue?) throws(StatsQueryError) {
        guard let value else { return }
        guard case .array(let items) = value else { throw StatsQueryError("order_by must be an array of [name, direction]") }
        for item in items {
            guard case .array(let pair) = item, pair.count == 2, let name = pair[0].stringValue,
                  let direction = pair[1].stringValue, direction == "asc" || direction == "desc" else {
                throw StatsQueryError("order_by entries are [metric or dimension, \"asc\" or \"desc\"]")
            }
            guard metrics.contains(where: { $0.rawValue == name }) || dimensions.contains(name) else {
                throw StatsQueryError("order_by \(name) is neither a metric nor a dimension of the query")
            }
            orderBy.append((name, direction == "desc"))
        }
    }

    mutating func readPagination(_ value: JSONValue?, maxResults: Int) throws(StatsQueryError) {
        guard let value else { return }
        guard let o = value.objectValue else { throw StatsQueryError("pagination must be {\"limit\": n, \"offset\": n}") }
        if let l = o["limit"] {
            guard case .int(let n) = l, n >= 1, n <= maxResults else {
                throw StatsQueryError("pagination.limit must be an integer from 1 to \(maxResults)")
            }
            limit = Int(n)
        }
        if let f = o["offset"] {
            guard case .int(let n) = f, n >= 0 else { throw StatsQueryError("pagination.offset must be a non-negative integer") }
            offset = Int(n)
        }
    }

    /// The rows the query reads: its breakdown's, or the filter's dimension's, or the totals.
    var source: String { breakdown?.stored ?? filter?.stored ?? "" }

    /// Whether a filter can match more than one stored value (unique visitors of several
    /// values cannot be added up exactly).
    var filterMatchesMany: Bool {
        guard let filter else { return false }
        return !(filter.op == .is && filter.values.count == 1)
    }

    func check() throws(StatsQueryError) {
        if let filter, let breakdown, filter.stored != breakdown.stored {
            throw StatsQueryError("filter on \(filter.dimension) is not supported with dimension \(dimensions.first { !$0.hasPrefix("time") } ?? ""): filter on the dimension you break down by")
        }
        if time == .hour && (breakdown != nil || filter != nil) {
            throw StatsQueryError("dimension time:hour is not supported with a breakdown or a filter; use time:day")
        }
        let allowed = Self.supported(source)
        for metric in metrics where !allowed.contains(metric) {
            let what = source.isEmpty ? "" : " with \(filter?.dimension ?? dimensions.first { !$0.hasPrefix("time") } ?? source)"
            throw StatsQueryError("metric \(metric.rawValue) is not supported\(what)")
        }
        if metrics.contains(.visitors) && breakdown == nil && filterMatchesMany {
            throw StatsQueryError("metric visitors is not supported with a filter that matches several values (\(filter!.op.rawValue) \(filter!.values.joined(separator: ", "))): filter with is and one value, or break down by \(filter!.dimension)")
        }
    }
}
