import Foundation
import Testing
import TributaryTesting

@Suite("Collector: real Segment and RudderStack SDKs deliver unchanged")
struct CollectorSDKTests {
    let env: TestEnvironment

    init() throws {
        env = try TestEnvironment.current()
    }

    @Test("segment-analytics-python and rudder-sdk-python (gzip) deliver every call", arguments: ["segment", "rudder"])
    func sdk(name: String) async throws {
        let collector = CollectorProcess(env: env, redisDatabase: name == "segment" ? 8 : 9)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let client = try ChildProcess(env.python, [env.fixtures + "/sdk/send_events.py", name, collector.baseURL, site.key, run],
                                      captureOutput: true, stderrPath: collector.spoolDirectory + "-\(name).log")
        var sent: [String] = []
        while let line = await client.readLine(timeout: .seconds(60)) { sent.append(line) }
        await client.wait()
        #expect(client.exitCode == 0, "the SDK reported errors; see \(collector.spoolDirectory)-\(name).log")
        #expect(sent.count == 6)

        let payloads = try await collector.rawBatches(site: site.id).values.map(\.1)
        var received: [String: [String: Any]] = [:]
        for payload in payloads {
            let object = try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
            for event in object?["batch"] as? [[String: Any]] ?? [] {
                if let id = event["messageId"] as? String { received[id] = event }
            }
        }
        #expect(Set(received.keys) == Set(sent))
        let track = try #require(received["\(name)-\(run)-track"])
        #expect(track["type"] as? String == "track")
        #expect(track["event"] as? String == "Order Completed")
        #expect((track["properties"] as? [String: Any])?["revenue"] as? Double == 42.5)
        #expect(track["userId"] as? String == "user-1")
        #expect(received["\(name)-\(run)-alias"]?["previousId"] as? String == "user-1")
        // Segment sends identify traits at the top level, RudderStack inside context.
        let identify = try #require(received["\(name)-\(run)-identify"])
        let traits = (identify["traits"] ?? (identify["context"] as? [String: Any])?["traits"]) as? [String: Any]
        #expect(traits?["email"] as? String == "ada@example.com")
        let queued = await eventually {
            (try? await collector.queuedBatchIDs(site: site.id).count) == payloads.count
        }
        #expect(queued)
    }
}
