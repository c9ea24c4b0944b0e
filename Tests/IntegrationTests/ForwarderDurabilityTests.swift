import Foundation
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Forwarder

/// The forwarder broken on purpose: killed mid-delivery, and a sink down for minutes under load.
@Suite("Forwarder durability", .serialized)
struct ForwarderDurabilityTests {
    let f: ForwarderFixture

    init() async throws {
        f = try await ForwarderFixture(redisDatabase: 9)
        try await f.start()
    }

    @Test("kill -9 mid-delivery: nothing lost; an event seen twice at the sink carries the same idempotency key")
    func killed() async throws {
        defer { Task { await f.stop() } }
        let sink = try await f.addSink("webhook", extra: ["--batch-size", "20", "--max-wait-ms", "50"])
        try await f.control(sink.name, ["stall": 0.1])
        let sent = try await f.push(sink: sink.id, count: 1500, perItem: 50)
        #expect(await eventually(timeout: .seconds(30)) { (try? await f.summary(sink.name).events) ?? 0 >= 300 })
        await f.kill9()
        let before = try await f.receivedEvents(sink.name).count
        #expect(before < 1500, "everything was delivered before the kill; the test proves nothing")
        try await f.start()
        #expect(await eventually(timeout: .seconds(120)) {
            (try? await f.summary(sink.name).unique) == 1500
        })
        let events = try await f.receivedEvents(sink.name)
        var byMessage: [String: Set<Int>] = [:]
        for e in events {
            guard let m = e["messageId"] as? String, let id = e["eventId"] as? Int else { continue }
            byMessage[m, default: []].insert(id)
        }
        #expect(Set(byMessage.keys) == Set(sent))
        #expect(byMessage.values.allSatisfy { $0.count == 1 }, "a message id arrived with two different events")
        #expect(try await f.received(sink.name)["badSignatures"] as? Int == 0)
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await f.count("SELECT count(*) AS n FROM forwarder.deliveries WHERE sink_id = $1", [sink.id])) == 1500
        })
        #expect(try await f.count("SELECT count(*) AS n FROM forwarder.dead_letters WHERE sink_id = $1", [sink.id]) == 0)
        print("kill -9: \(events.count - 1500) duplicate deliveries, each with its original messageId")
    }

    @Test("two forwarder instances on one sink: every event delivered, a duplicate only with the same key")
    func twoInstances() async throws {
        defer { Task { await f.stop() } }
        let second = try await f.startAnother()
        defer { second.send(SIGTERM) }
        let sink = try await f.addSink("webhook", extra: ["--batch-size", "25", "--max-wait-ms", "20"])
        try await f.control(sink.name, ["stall": 0.02])
        let sent = try await f.push(sink: sink.id, count: 2000, perItem: 25)
        #expect(await eventually(timeout: .seconds(60)) { (try? await f.summary(sink.name).unique) == 2000 })
        let events = try await f.receivedEvents(sink.name)
        var byMessage: [String: Set<Int>] = [:]
        for e in events {
            if let m = e["messageId"] as? String, let id = e["eventId"] as? Int { byMessage[m, default: []].insert(id) }
        }
        #expect(Set(byMessage.keys) == Set(sent))
        #expect(byMessage.values.allSatisfy { $0.count == 1 })
        // Both instances delivered (the queue is shared, not owned by one of them).
        let consumers = try await f.redis.send("ZCARD", QueueKeys(name: QueueName.forward(sinkID: sink.id)).consumers).integer ?? 0
        #expect(consumers == 2)
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await f.count("SELECT count(*) AS n FROM forwarder.deliveries WHERE sink_id = $1", [sink.id])) == 2000
        })
        print("two instances: \(events.count - 2000) duplicate deliveries, each with its original messageId")
    }

    @Test("a sink down for minutes under load, then back: every event delivered exactly once, none lost or dead")
    func sinkOutage() async throws {
        defer { Task { await f.stop() } }
        let seconds = Int(ProcessInfo.processInfo.environment["TRIBUTARY_TEST_SINK_OUTAGE_SECONDS"] ?? "") ?? 300
        let down = try await f.addSink("webhook", extra: ["--max-wait-ms", "100"])
        let healthy = try await f.addSink("webhook", extra: ["--max-wait-ms", "100"])
        try await f.control(down.name, ["down": true, "status": 503])
        var sent: [String] = []
        var healthySent = 0
        let end = ContinuousClock.now + .seconds(seconds)
        var round = 0
        while ContinuousClock.now < end {
            sent += try await f.push(sink: down.id, count: 20, perItem: 10, prefix: "out\(round)")
            healthySent += try await f.push(sink: healthy.id, count: 5, perItem: 5, prefix: "ok\(round)").count
            round += 1
            try await Task.sleep(for: .milliseconds(250))
        }
        let requestsWhileDown = try await f.received(down.name)["requests"] as? Int ?? 0
        // The other sink kept flowing during the outage.
        #expect(await eventually(timeout: .seconds(10)) { (try? await f.summary(healthy.name).events) == healthySent })
        try await f.control(down.name, ["down": false])
        #expect(await eventually(timeout: .seconds(180)) { (try? await f.summary(down.name).events) ?? 0 >= sent.count })
        let received = try await f.receivedEvents(down.name).compactMap { $0["messageId"] as? String }
        #expect(received.count == sent.count, "delivered \(received.count) events for \(sent.count) sent")
        #expect(Set(received) == Set(sent))
        #expect(try await f.count("SELECT count(*) AS n FROM forwarder.dead_letters WHERE sink_id = $1", [down.id]) == 0)
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await f.count("SELECT count(*) AS n FROM forwarder.retries WHERE sink_id = $1", [down.id])) == 0
        })
        // The breaker kept the failing sink from being hammered: far fewer requests than batches.
        #expect(requestsWhileDown < sent.count / 10, "\(requestsWhileDown) requests to a sink that was down")
        print("sink outage: \(sent.count) events over \(seconds) s, \(requestsWhileDown) requests while down")
    }
}
