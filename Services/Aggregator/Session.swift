import Foundation
import TributaryModels

/// A visit: a visitor's interactions with no gap longer than the session timeout.
/// Its visit-level values (entry page, source, UTM, country, browser, OS, device) are
/// those of its first interaction; the exit page is its latest page view.
struct Session: Sendable, Hashable {
    /// The visitor the visit counts for: the hash it started under (a visit that crosses
    /// UTC midnight keeps yesterday's hash, so nobody is counted twice for it).
    var visitor: String
    var start: Date
    var last: Date
    var pageviews: Int64
    var interactions: Int64
    var entryPage: String?
    var exitPage: String?
    var source: String?
    var utmSource: String?
    var utmMedium: String?
    var utmCampaign: String?
    var country: String?
    var browser: String?
    var os: String?
    var device: String?

    /// A visit of one interaction.
    init(first e: StatEvent, visitor: String) {
        self.visitor = visitor
        start = e.time
        last = e.time
        pageviews = e.isPageview ? 1 : 0
        interactions = 1
        entryPage = e.path
        exitPage = e.isPageview ? e.path : nil
        source = e.source
        utmSource = e.utmSource
        utmMedium = e.utmMedium
        utmCampaign = e.utmCampaign
        country = e.country
        browser = e.browser
        os = e.os
        device = e.device
    }

    init(visitor: String, start: Date, last: Date, pageviews: Int64, interactions: Int64, entryPage: String?,
         exitPage: String?, source: String?, utmSource: String?, utmMedium: String?, utmCampaign: String?,
         country: String?, browser: String?, os: String?, device: String?) {
        self.visitor = visitor
        self.start = start
        self.last = last
        self.pageviews = pageviews
        self.interactions = interactions
        self.entryPage = entryPage
        self.exitPage = exitPage
        self.source = source
        self.utmSource = utmSource
        self.utmMedium = utmMedium
        self.utmCampaign = utmCampaign
        self.country = country
        self.browser = browser
        self.os = os
        self.device = device
    }

    /// Adds the visit's next interaction (in time order).
    mutating func add(_ e: StatEvent) {
        if e.isPageview {
            pageviews += 1
            if let path = e.path { exitPage = path }
        }
        if entryPage == nil { entryPage = e.path }
        last = max(last, e.time)
        interactions += 1
    }

    var isBounce: Bool { interactions <= 1 }

    /// Whole seconds from the first interaction to the last.
    var durationSeconds: Int64 { Int64(last.timeIntervalSince(start).rounded(.down)) }

    /// The visit-level breakdown values: (dim, value), with defaults for the unknown.
    /// The exit page is included only when `withExit`.
    func visitValues(withExit: Bool) -> [(String, String)] {
        var out: [(String, String)] = [
            (Dim.source, source ?? Dim.direct), (Dim.country, country ?? Dim.none), (Dim.browser, browser ?? Dim.none),
            (Dim.os, os ?? Dim.none), (Dim.device, device ?? Dim.none),
        ]
        if let entryPage { out.append((Dim.entryPage, entryPage)) }
        if withExit, let exitPage { out.append((Dim.exitPage, exitPage)) }
        if let utmSource { out.append((Dim.utmSource, utmSource)) }
        if let utmMedium { out.append((Dim.utmMedium, utmMedium)) }
        if let utmCampaign { out.append((Dim.utmCampaign, utmCampaign)) }
        return out
    }

    /// What the visit adds to the rows of its start day and hour.
    var counts: Counts {
        Counts(visits: 1, bounces: isBounce ? 1 : 0, duration: durationSeconds, visitPageviews: pageviews)
    }
}
