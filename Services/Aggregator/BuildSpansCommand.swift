import ArgumentParser
import Foundation
import TributaryModels
import TributaryRuntime

/// `aggregator build-spans [--site S]`: builds the spans the sites are missing now, as the
/// janitor does on each pass, until none is missing (or `--limit` spans were built).
struct BuildSpansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build-spans",
        abstract: "Build the spans (sums of daily rows over closed days) that long-range breakdowns read.",
        discussion: """
            The janitor builds them on each pass (aggregator.spans.buildLimit at a time); this builds them now, \
            for instance after a rebuild or once a large history is loaded. Safe while the daemon runs: each span \
            is built in its own transaction under the site's lock.
            """)

    @OptionGroup var options: CommonOptions
    @Option(help: "Only this site (id or name); every site by default.") var site: String?
    @Option(help: "Build at most this many spans.") var limit = 1_000_000
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
    }

    func run() async throws {
        let total = try await CommandDatabase.with(config: options.config, label: "build-spans") { db in
            let sites = try site.map { [try db.site($0).id] }
            var total = SpanBuilder.Report()
            repeat {
                let builder = SpanBuilder(postgres: db.postgres, catalog: db.catalog, limit: min(500, limit - total.spans))
                let report = try await builder.pass(now: Date(), sites: sites)
                total.spans += report.spans
                total.rows += report.rows
                total.remaining = report.remaining
                if !json && report.spans > 0 {
                    FileHandle.standardError.write(Data("built \(total.spans) spans (\(total.rows) rows), \(report.remaining) left\n".utf8))
                }
                if report.spans == 0 { break }
            } while total.remaining > 0 && total.spans < limit
            return total
        }
        if json {
            print(JSONValue.object(["spans": .int(Int64(total.spans)), "rows": .int(Int64(total.rows)),
                                    "remaining": .int(Int64(total.remaining))]).jsonText)
        } else {
            print("built \(total.spans) spans (\(total.rows) rows); \(total.remaining) left")
        }
    }
}
