import ArgumentParser
import Foundation
import NIOPosix
import TributaryHTTP
import TributaryModels
import TributaryRuntime

/// `tributary-load`: realistic traffic against the real collector (`run`), and the
/// end-to-end verifier of what every stage made of it (`verify`).
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary-load",
        abstract: "Drive the collector with realistic traffic and verify every stage against what was acknowledged.",
        subcommands: [RunCommand.self, VerifyCommand.self],
        defaultSubcommand: RunCommand.self)
}

/// `tributary-load run`: sends events, records every batch and whether it was acknowledged.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Send realistic traffic to a collector on this machine and record what was acknowledged.",
        discussion: """
            Sites come from --sites-file: a JSON array of {"siteId": N, "writeKey": "…"} (what `collector sites add --json` \
            prints), each with an optional "weight" (its share of the traffic). Page views (real paths, referrers, UTM \
            tags, click ids, a few hundred real user agents), custom events with properties, identifies and metrics, \
            spread over the sites by their weights or else with a Zipf distribution; a fraction \
            resent (duplicates) and a fraction invalid. Loopback only.
            """)

    @Option(help: "The collector's base URL (loopback only).") var collector = "http://127.0.0.1:8080"
    @Option(help: "JSON file of the sites to send to.") var sitesFile: String
    @Option(help: "How many events to send.") var events = 10_000
    @Option(help: "The most seconds to run.") var seconds = 600.0
    @Option(help: "Events per second (0: as fast as possible).") var rate = 0.0
    @Option(help: "Events per request.") var batchSize = 20
    @Option(help: "Requests in flight at once.") var concurrency = 8
    @Option(help: "Fraction of events that resend an acknowledged one.") var duplicates = 0.01
    @Option(help: "Fraction of events that are invalid.") var invalid = 0.01
    @Option(help: "Fraction of requests followed by a malformed one (random bytes, cut JSON, wrong shape, unknown key, oversized, too deep), each of which must get a 4xx.")
    var malformed = 0.0
    @Option(help: "Visitors per site (0: about 10 events per visitor, 100 to 65536).") var visitors = 0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "How long to keep retrying one batch (429, 503, connection errors).") var retrySeconds = 120.0
    @Option(help: "Where to write the record.") var record = ".run/e2e/record.jsonl"
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard let url = URL(string: collector), let host = url.host, ["127.0.0.1", "localhost", "::1"].contains(host) else {
            throw ValidationError("--collector must be on this machine (127.0.0.1, localhost or ::1)")
        }
        guard (1...100_000_000).contains(events) else { throw ValidationError("--events must be 1-100000000") }
        guard seconds > 0 && seconds <= 86_400 else { throw ValidationError("--seconds must be 0-86400") }
        guard rate >= 0 else { throw ValidationError("--rate must be 0 or more") }
        guard (1...2500).contains(batchSize) else { throw ValidationError("--batch-size must be 1-2500") }
        guard (1...512).contains(concurrency) else { throw ValidationError("--concurrency must be 1-512") }
        guard (0...0.5).contains(duplicates), (0...0.5).contains(invalid) else {
            throw ValidationError("--duplicates and --invalid must be fractions of at most 0.5")
        }
        guard (0...65_536).contains(visitors) else { throw ValidationError("--visitors must be 0-65536") }
        guard (0...1).contains(malformed) else { throw ValidationError("--malformed must be a fraction") }
    }

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: sitesFile),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw DaemonError("cannot read \(sitesFile): expected a JSON array of {\"siteId\", \"writeKey\"}")
        }
        let sites = list.compactMap { o -> (Int64, String)? in
            guard let id = (o["siteId"] as? NSNumber)?.int64Value, let key = o["writeKey"] as? String else { return nil }
            return (id, key)
        }
        // Optional "weight" per site: its share of the traffic (otherwise Zipf-skewed by position).
        let weights = list.map { ($0["weight"] as? NSNumber)?.doubleValue }
        if weights.contains(where: { $0 != nil }), weights.contains(where: { ($0 ?? 0) <= 0 }) {
            throw DaemonError("\(sitesFile): give every site a positive \"weight\", or none")
        }
        guard !sites.isEmpty else { throw DaemonError("\(sitesFile) lists no site") }
        try FileManager.default.createDirectory(atPath: (record as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        let visitors = self.visitors > 0 ? self.visitors : min(65_536, max(100, events / (10 * sites.count)))
        let writer = try RecordWriter(path: record)
        try writer.write(RunHeader(startedAt: Date(), collector: collector, sites: sites.map(\.0), seed: seed,
                                   visitorsPerSite: visitors))
        let pool = NIOThreadPoolBox(threads: concurrency)
        defer { pool.stop() }
        let http = HTTPClient(threadPool: pool.pool)
        defer { http.close() }
        let generator = Generator(options: .init(
            collector: collector, sites: sites.map { (id: $0.0, key: $0.1) }, weights: weights.compactMap { $0 }, events: events, seconds: seconds, rate: rate,
            batchSize: batchSize, concurrency: concurrency, duplicates: duplicates, invalid: invalid,
            visitorsPerSite: visitors, seed: seed, retrySeconds: retrySeconds, malformed: malformed), record: writer, http: http)
        let started = ContinuousClock.now
        let progress = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(5))
                if Task.isCancelled { break }
                let t = generator.snapshot
                let s = Double((ContinuousClock.now - started).components.seconds)
                FileHandle.standardError.write(Data("sent \(t.events) events in \(t.batches) batches (\(t.acked) acknowledged), \(s > 0 ? Int(Double(t.events) / s) : 0) events/s\n".utf8))
            }
        }
        await generator.run()
        progress.cancel()
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let t = generator.snapshot
        try writer.write(RunFooter(finishedAt: Date(), seconds: seconds, batches: t.batches, events: t.events, unacked: t.unacked))
        try writer.close()
        let sorted = t.latenciesMs.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        let summary: [String: Any] = [
            "events": t.events, "batches": t.batches, "acknowledged": t.acked, "unacknowledged": t.unacked, "retries": t.retries,
            "seconds": (seconds * 100).rounded() / 100, "eventsPerSecond": Int(Double(t.events) / max(seconds, 0.001)),
            "latencyMs": ["p50": (percentile(0.5) * 10).rounded() / 10, "p99": (percentile(0.99) * 10).rounded() / 10],
            "record": record, "malformedSent": t.malformedSent, "malformedNotRefused": t.malformedNotRefused,
        ]
        if json {
            printJSON(summary)
        } else {
            print("sent \(t.events) events in \(t.batches) batches in \(String(format: "%.1f", seconds)) s "
                  + "(\(summary["eventsPerSecond"]!) events/s); \(t.acked) acknowledged, \(t.unacked) not; "
                  + "p50 \(String(format: "%.1f", percentile(0.5))) ms, p99 \(String(format: "%.1f", percentile(0.99))) ms; record: \(record)")
        }
        if t.malformedNotRefused > 0 {
            throw DaemonError("\(t.malformedNotRefused) of \(t.malformedSent) malformed requests were not refused with a 4xx")
        }
        if t.unacked > 0 { throw DaemonError("\(t.unacked) batch(es) were never acknowledged (recorded as unacknowledged)") }
    }
}
