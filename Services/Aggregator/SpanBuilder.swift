import Foundation
import TributaryPostgres

/// Builds the spans (`Spans`) each site is missing, shortest first, one short transaction
/// per span under the site's lock; at most `limit` spans a pass. The janitor runs a pass
/// every time it runs, and `aggregator build-spans` runs one on demand.
struct SpanBuilder: Sendable {
    let postgres: PostgresClient
    let catalog: SiteCatalog
    /// Spans built per pass at most (`aggregator.spans.buildLimit`; 0 builds none).
    let limit: Int

    /// What a pass did.
    struct Report: Sendable, Equatable {
        var spans = 0
        var rows = 0
        /// Spans left for a later pass (the limit was reached; not counted when the limit is 0).
        var remaining = 0
    }

    /// One pass over `sites` (every site the catalog knows when nil).
    func pass(now: Date, sites: [Int64]? = nil) async throws -> Report {
        var report = Report()
        guard limit > 0 else { return report }
        for site in sites ?? catalog.all.map(\.id) {
            guard !Task.isCancelled else { break }
            let through = catalog.clock(site).day(now) - Spans.closedAfterDays
            let start = try await postgres.query("""
                SELECT (min(day) - date '1970-01-01') AS d FROM aggregator.daily WHERE site_id = $1 AND dim = ''
                """, [site]).first?.int("d")
            guard let start, Int32(start) <= through else { continue }
            let built = try await postgres.withConnection { db in
                try await Spans.built(db, site: site, from: Int32(start), through: through)
            }
            let missing = Spans.missing(built: built, from: Int32(start), through: through)
            for span in missing {
                guard report.spans < limit, !Task.isCancelled else {
                    report.remaining += 1
                    continue
                }
                let rows = try await postgres.withTransaction { tx -> Int? in
                    try await AggregatorStore.lockSite(tx, site: site)
                    return try await Spans.build(tx, site: site, span)
                }
                if let rows {
                    report.spans += 1
                    report.rows += rows
                }
            }
        }
        return report
    }
}
