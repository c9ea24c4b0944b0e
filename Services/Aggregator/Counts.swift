/// The additive counts of one statistics row (a day, an hour or a breakdown value).
struct Counts: Sendable, Hashable {
    var visitors: Int64 = 0
    /// Of `visitors`, those also counted in the same row the day before.
    var carried: Int64 = 0
    var visits: Int64 = 0
    var pageviews: Int64 = 0
    var events: Int64 = 0
    var bounces: Int64 = 0
    /// Seconds, summed over visits.
    var duration: Int64 = 0
    /// Page views of the visits (attributed to the visit's start).
    var visitPageviews: Int64 = 0

    var isZero: Bool { self == Counts() }

    /// Whether any count goes down (the row may end at zero).
    var hasNegative: Bool {
        visitors < 0 || carried < 0 || visits < 0 || pageviews < 0 || events < 0 || bounces < 0 || duration < 0
            || visitPageviews < 0
    }

    static func += (a: inout Counts, b: Counts) {
        a.visitors += b.visitors
        a.carried += b.carried
        a.visits += b.visits
        a.pageviews += b.pageviews
        a.events += b.events
        a.bounces += b.bounces
        a.duration += b.duration
        a.visitPageviews += b.visitPageviews
    }

    static prefix func - (a: Counts) -> Counts {
        Counts(visitors: -a.visitors, carried: -a.carried, visits: -a.visits, pageviews: -a.pageviews, events: -a.events,
               bounces: -a.bounces, duration: -a.duration, visitPageviews: -a.visitPageviews)
    }
}

/// A daily row: the totals (`dim` and `value` empty) or one breakdown value.
struct DayKey: Sendable, Hashable {
    var day: Int32
    var dim: String
    var value: String

    static func total(_ day: Int32) -> DayKey { DayKey(day: day, dim: "", value: "") }
}

/// The breakdown dimensions stored per day, as the `dim` column spells them.
enum Dim {
    static let page = "page", entryPage = "entry_page", exitPage = "exit_page", source = "source",
               utmSource = "utm_source", utmMedium = "utm_medium", utmCampaign = "utm_campaign", country = "country",
               browser = "browser", os = "os", device = "device", name = "name"
    /// The hour-of-day membership of unique visitors (never a daily row).
    static let hour = "@hour"
    static func prop(_ key: String) -> String { "props:" + key }
    /// The value a breakdown folds into once it holds the configured number of values.
    static let other = "(other)"
    /// A visit without a referrer.
    static let direct = "Direct / None"
    /// A value hydration could not determine (no geo match, no user agent).
    static let none = "(none)"
    /// Whether new values of `dim` fold into (other) past the limit.
    static func folds(_ dim: String) -> Bool { !dim.isEmpty && dim != hour }
}
