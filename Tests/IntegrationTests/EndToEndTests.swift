import Foundation
import Testing
import TributaryHTTP
import TributaryTesting

extension DisruptiveTests {
    /// `tributary-load` against the whole pipeline as real processes, checked by its verifier.
    @Suite("End to end: generated traffic ties at every stage", .serialized)
    struct EndToEndTests {
        /// Runs `tributary-load <arguments>` with the fixture's config; returns output and exit code.
        static func load(_ f: HealthFixture, _ arguments: [String]) async throws -> (output: String, code: Int32) {
            let child = try ChildProcess(f.env.binDirectory + "/tributary-load", arguments, environment: f.environment,
                                         captureOutput: true, stderrPath: f.directory + "/load.log")
            var text = ""
            while let line = await child.readLine(timeout: .seconds(300)) { text += line + "\n" }
            await child.wait()
            return (text, child.exitCode ?? -1)
        }

        @Test("Realistic traffic over three sites: every acknowledged event is stored, rejected or deduplicated once, counted once and delivered once")
        func shortRun() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                var sites: [[String: Any]] = [["siteId": f.site.id, "writeKey": f.site.key]]
                for _ in 0..<2 {
                    let added = try await f.json("collector", ["sites", "add", TestEnvironment.uniqueName("e2e")])
                    sites.append(["siteId": added["siteId"]!, "writeKey": added["writeKey"]!])
                }
                let ids = sites.map { "\($0["siteId"]!)" }
                _ = try await f.json("forwarder", ["sinks", "update", f.sinkName, "--batch-size", "50", "--concurrency", "4"]
                                     + ids.flatMap { ["--site", $0] })
                try await Task.sleep(for: .seconds(1))
                let sitesFile = f.directory + "/sites.json"
                try JSONSerialization.data(withJSONObject: sites).write(to: URL(fileURLWithPath: sitesFile))
                let record = f.directory + "/record.jsonl"
                let (sent, sentCode) = try await Self.load(f, [
                    "run", "--collector", "http://127.0.0.1:\(f.collectorPort)", "--sites-file", sitesFile, "--events", "3000",
                    "--visitors", "50", "--duplicates", "0.03", "--invalid", "0.02", "--record", record, "--json"])
                #expect(sentCode == 0, "\(sent)")
                let (verified, code) = try await Self.load(f, [
                    "verify", record, "--sink-ids", "http://127.0.0.1:\(f.standInPort)/_received/\(f.sinkName)/ids",
                    "--sink-id", String(f.sinkID), "--wait", "120", "--json"])
                #expect(code == 0, "\(verified)")
                let result = try JSONSerialization.jsonObject(with: Data(verified.utf8)) as? [String: Any]
                let stages = result?["stages"] as? [[String: Any]] ?? []
                #expect(stages.map { $0["stage"] as? String } == ["raw batches", "hydration", "aggregates", "delivered"])
                for stage in stages {
                    #expect((stage["expected"] as? Int ?? 0) > 0 && stage["expected"] as? Int == stage["ok"] as? Int, "\(stage)")
                }
                // The burst filled the hydrate queue past this fixture's small limit (40): that, and only
                // that, was alerted, and it resolved once the queue drained.
                let resolved = await eventually(timeout: .seconds(30)) {
                    let events = (try? await f.received(f.pagerDuty)) ?? []
                    let open = Dictionary(grouping: events, by: { $0["dedup_key"] as? String ?? "" })
                        .filter { $0.value.last?["event_action"] as? String != "resolve" }
                    return open.isEmpty
                }
                #expect(resolved)
                let alerts = try await f.received(f.pagerDuty)
                let keys = Set(alerts.compactMap { $0["dedup_key"] as? String })
                let others = alerts.filter { !(($0["dedup_key"] as? String)?.hasPrefix("tributary:backlog:") ?? false) }
                #expect(keys.allSatisfy { $0.hasPrefix("tributary:backlog:") },
                        "\(keys): \(others.map { ($0["payload"] as? [String: Any])?["summary"] ?? $0 })")
            }
        }
    }
}
