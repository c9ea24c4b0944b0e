import Foundation
import Testing
import TributaryHTTP
import TributaryPostgres
import TributaryTesting

extension DisruptiveTests {
    /// Real client SDKs through the whole pipeline: what segment-analytics-python and
    /// rudder-sdk-python send (their own batching, gzip and retries) is stored, counted in
    /// the aggregates and delivered to a sink.
    @Suite("Real SDKs, followed to the aggregates and the sinks", .serialized)
    struct SDKEndToEndTests {
        @Test("segment-analytics-python and rudder-sdk-python: every call stored, counted and forwarded")
        func sdksToTheEnd() async throws {
            let f = try await HealthFixture()
            try await f.stopping {
                try await f.startAll()
                let added = try await f.json("collector", ["sites", "add", TestEnvironment.uniqueName("sdk")])
                let site = try #require((added["siteId"] as? NSNumber)?.int64Value)
                let key = try #require(added["writeKey"] as? String)
                _ = try await f.json("forwarder", ["sinks", "update", f.sinkName, "--site", String(f.site.id), "--site", String(site)])
                try await Task.sleep(for: .seconds(1))
                var sent: [String] = []
                for sdk in ["segment", "rudder"] {
                    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
                    let client = try ChildProcess(f.env.python, [f.env.fixtures + "/sdk/send_events.py", sdk,
                                                                 "http://127.0.0.1:\(f.collectorPort)", key, run],
                                                  captureOutput: true, stderrPath: f.directory + "/sdk-\(sdk).log")
                    while let line = await client.readLine(timeout: .seconds(60)) { sent.append(line) }
                    await client.wait()
                    #expect(client.exitCode == 0, "\(sdk) reported errors; see \(f.directory)/sdk-\(sdk).log")
                }
                #expect(sent.count == 12)

                // Stored: every call, once.
                let storedAll = await eventually(timeout: .seconds(30)) {
                    let rows = try? await f.admin.query("SELECT message_id FROM hydration.events WHERE site_id = $1", [site]).rows
                    return rows.map { r in Set(r.compactMap { try? $0.string("message_id") }) } == Set(sent)
                }
                #expect(storedAll, "hydration did not store every SDK call")
                // Counted: per SDK a page and a screen (page views) and a track (custom event).
                let counted = await eventually(timeout: .seconds(30)) {
                    let row = try? await f.admin.query("""
                        SELECT sum(pageviews)::bigint AS pageviews, sum(events)::bigint AS events FROM aggregator.daily
                        WHERE site_id = $1 AND dim = ''
                        """, [site]).rows.first
                    return (try? row?.int("pageviews")) == 4 && (try? row?.int("events")) == 6
                }
                #expect(counted, "the aggregates do not count the SDKs' page views and events")
                let orders = try await f.admin.query("""
                    SELECT sum(events)::bigint AS n FROM aggregator.daily WHERE site_id = $1 AND dim = 'name' AND value = 'Order Completed'
                    """, [site]).rows.first?.int("n")
                #expect(orders == 2)
                // Forwarded: every call reached the webhook sink (signed, verified by the stand-in).
                let forwarded = await eventually(timeout: .seconds(30)) {
                    let response = try? await f.http.send(HTTPClientRequest(
                        url: "http://127.0.0.1:\(f.standInPort)/_received/\(f.sinkName)/ids", timeoutMs: 10_000))
                    let pairs = response.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [[String]] } ?? []
                    return Set(sent).isSubset(of: Set(pairs.compactMap { $0.count == 2 ? $0[1] : nil }))
                }
                #expect(forwarded, "the sink did not receive every SDK call")
                try await FaultTests.allResolved(f)
            }
        }
    }
}
