import Crypto
import Foundation
import Testing
import TributaryHTTP
import TributaryModels
@testable import Forwarder
@testable import Hydration

@Suite("Forwarder logic")
struct ForwarderLogicTests {
    func event(_ type: String, name: String? = "Bought", site: Int64 = 1, id: Int64 = 1, extra: [String: JSONValue] = [:]) -> ForwardEvent {
        var o: [String: JSONValue] = ["eventId": .int(id), "messageId": .string("m\(id)"), "type": .string(type),
                                      "timestamp": .string("2026-01-02T03:04:05.678Z"), "visitorHash": .string("vh")]
        if let name { o["name"] = .string(name) }
        for (k, v) in extra { o[k] = v }
        return ForwardEvent(object: o, siteID: site)!
    }

    @Test("the Standard Webhooks signature matches the specification's test vector")
    func webhookSignature() throws {
        let key = try WebhookSink.key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        #expect(WebhookSink.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330,
                                      body: Array(#"{"test": 2432232314}"#.utf8), key: key)
            == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(throws: (any Error).self) { try WebhookSink.key("not base64!") }
        let a = WebhookSink.messageID(sink: 1, events: [event("track", id: 1), event("track", id: 2)])
        #expect(a == WebhookSink.messageID(sink: 1, events: [event("track", id: 1), event("track", id: 2)]))
        #expect(a != WebhookSink.messageID(sink: 2, events: [event("track", id: 1), event("track", id: 2)]))
    }

    @Test("sink rules: sites, types, names and Segment's integrations map")
    func rules() {
        let hook = SinkRule(sinkID: 1, name: "crm-hook", type: .webhook)
        #expect(hook.matches(site: 5, type: .track, name: "x", integrations: nil))
        #expect(!hook.matches(site: 5, type: .metric, name: "x", integrations: nil))
        #expect(!hook.matches(site: 5, type: .track, name: "x", integrations: ["All": .bool(false)]))
        #expect(hook.matches(site: 5, type: .track, name: "x", integrations: ["All": .bool(false), "CRM-Hook": .bool(true)]))
        #expect(hook.matches(site: 5, type: .track, name: "x", integrations: ["All": .bool(false), "webhooks": .object([:])]))
        #expect(!hook.matches(site: 5, type: .track, name: "x", integrations: ["Webhooks": .bool(false)]))
        let mixpanel = SinkRule(sinkID: 2, name: "mp", type: .mixpanel, sites: [7], eventNames: ["Bought"])
        #expect(mixpanel.matches(site: 7, type: .track, name: "Bought", integrations: nil))
        #expect(!mixpanel.matches(site: 8, type: .track, name: "Bought", integrations: nil))
        #expect(!mixpanel.matches(site: 7, type: .track, name: "Sold", integrations: nil))
        #expect(!mixpanel.matches(site: 7, type: .identify, name: nil, integrations: nil))
        let statsd = SinkRule(sinkID: 3, name: "dd", type: .statsd)
        #expect(statsd.matches(site: 1, type: .metric, name: "lat", integrations: nil))
        #expect(!statsd.matches(site: 1, type: .track, name: "x", integrations: nil))
        #expect(SinkRule(sinkID: 3, name: "dd", type: .statsd, eventCounters: true).matches(site: 1, type: .track, name: "x", integrations: nil))
        let identifies = SinkRule(sinkID: 4, name: "seg", type: .segment, eventTypes: [.identify])
        #expect(identifies.matches(site: 1, type: .identify, name: nil, integrations: nil))
        #expect(!identifies.matches(site: 1, type: .track, name: "x", integrations: nil))
    }

    @Test("the router: aggregate gets all but metrics, sinks what their rules match, store-only sites nothing")
    func router() {
        func hydrated(_ type: EventType, _ name: String?) -> HydratedEvent {
            var e = HydratedEvent(eventID: 1, messageID: "m", type: type, timestamp: Date(), receivedAt: Date(), visitorHash: "v")
            e.name = name
            return e
        }
        let router = EventRouter(rules: [SinkRule(sinkID: 1, name: "a", type: .webhook), SinkRule(sinkID: 2, name: "b", type: .statsd)],
                                 isStoreOnly: { $0 == 9 })
        let plan = router.plan(site: 1, events: [hydrated(.track, "x"), hydrated(.metric, "lat"), hydrated(.page, nil)])
        #expect(plan.aggregate == [0, 2], "positions in the batch's event list")
        #expect(plan.sinks.map(\.events) == [[0, 2], [1]])
        #expect(plan.counts == ["aggregate": 2, "forward:1": 2, "forward:2": 1])
        #expect(router.plan(site: 9, events: [hydrated(.track, "x")]).counts == ["aggregate": 0])
    }

    @Test("retries back off exponentially with jitter, honour Retry-After, and give up only after attempts and age")
    func retryPolicy() {
        let policy = RetryPolicy(baseSeconds: 1, maxDelaySeconds: 60, maxAttempts: 5, maxAgeSeconds: 3600)
        for attempt in 1...10 {
            let delay = policy.delay(afterAttempts: attempt, retryAfter: nil)
            let ceiling = min(60, pow(2, Double(attempt - 1)))
            #expect(delay >= ceiling / 2 && delay <= ceiling + 0.001)
        }
        #expect(policy.delay(afterAttempts: 1, retryAfter: 30) >= 30)
        #expect(!policy.isExhausted(attempts: 5, ageSeconds: 100))
        #expect(!policy.isExhausted(attempts: 2, ageSeconds: 7200))
        #expect(policy.isExhausted(attempts: 5, ageSeconds: 3600))
        #expect(HTTPOutcome.retryAfter("120") == 120)
        #expect(HTTPOutcome.retryAfter("soon") == nil)
        #expect(HTTPOutcome.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT") == 0)
    }

    @Test("answers are classified: 2xx delivered, 408/429/5xx retried, other 4xx rejected")
    func classification() {
        func status(_ s: Int) -> String { HTTPOutcome.classify(HTTPClientResponse(status: s, headers: [], body: [])).label }
        #expect(status(200) == "delivered")
        #expect(status(204) == "delivered")
        #expect(status(429) == "retry")
        #expect(status(503) == "retry")
        #expect(status(408) == "retry")
        #expect(status(400) == "rejected")
        #expect(status(401) == "rejected")
        #expect(status(301) == "rejected")
    }

    @Test("the breaker opens after the threshold, lets one probe through, closes on success")
    func breaker() async throws {
        let breaker = CircuitBreaker(threshold: 2, openSeconds: 0.2, maxOpenSeconds: 1)
        #expect(breaker.permit().wait == nil)
        breaker.failed()
        #expect(breaker.state == .closed)
        breaker.failed()
        #expect(breaker.state == .open)
        #expect(breaker.permit().wait != nil)
        try await Task.sleep(for: .milliseconds(250))
        let probe = breaker.permit()
        #expect(probe.probe && probe.wait == nil)
        #expect(breaker.permit().wait != nil, "a second request went through while the probe was out")
        breaker.failed()
        #expect(breaker.state == .open)
        try await Task.sleep(for: .milliseconds(450))
        #expect(breaker.permit().probe)
        breaker.succeeded()
        #expect(breaker.state == .closed)
        breaker.failed(pause: 0.3)
        #expect(breaker.state == .open)
    }

    @Test("DogStatsD lines: kinds, tags, the site, sanitised names; packed into datagrams")
    func statsd() {
        let metric = event("metric", name: "api latency", extra: ["metric": .object([
            "kind": .string("timer"), "value": .double(12.5), "tags": .object(["route": .string("/a,b")])])])
        #expect(StatsdSink.line(metric) == "api_latency:12.5|ms|#site:1,route:/a_b")
        let counter = event("metric", name: "jobs", extra: ["metric": .object(["kind": .string("counter"), "value": .int(3)])])
        #expect(StatsdSink.line(counter) == "jobs:3|c|#site:1")
        #expect(StatsdSink.line(event("track", name: "Signed Up")) == "tributary.events:1|c|#site:1,type:track,event:Signed_Up")
        let packets = StatsdSink.datagrams(Array(repeating: String(repeating: "x", count: 100), count: 30), limit: 1432)
        #expect(packets.allSatisfy { $0.count <= 1432 })
        #expect(packets.map { $0.split(separator: 0x0A).count }.reduce(0, +) == 30)
    }

    @Test("Mixpanel records: original time in ms, $insert_id from messageId (hashed when too long), enrichment mapped")
    func mixpanel() {
        let e = event("track", extra: ["userId": .string("u1"), "enrichment": .object(["country": .string("FR"), "browser": .string("Firefox")])])
        let p = MixpanelSink.record(e).objectValue?["properties"]?.objectValue ?? [:]
        #expect(p["time"] == .int(1_767_323_045_678))
        #expect(p["$insert_id"] == .string("m1"))
        #expect(p["distinct_id"] == .string("u1"))
        #expect(p["mp_country_code"] == .string("FR"))
        #expect(p["$browser"] == .string("Firefox"))
        let long = MixpanelSink.insertID(String(repeating: "a", count: 40))
        #expect(long.count == 32 && long != String(repeating: "a", count: 32))
        #expect(MixpanelSink.insertID("has space") != "has space")
    }

    @Test("chunks respect the batch size and byte limit")
    func chunks() {
        let events = (1...25).map { event("track", id: Int64($0)) }
        let limits = Sink.Limits(batchSize: 10, maxBytes: 1 << 20, maxWaitMs: 0, concurrency: 1, timeoutMs: 1000)
        #expect(Deliverer.chunks(events, limits: limits).map(\.count) == [10, 10, 5])
        var small = limits
        small.maxBytes = 700
        #expect(Deliverer.chunks(events, limits: small).allSatisfy { $0.count < 10 })
        #expect(Deliverer.chunks(events, limits: small).map(\.count).reduce(0, +) == 25)
    }

    @Test("outbound addresses: private, loopback, link-local, shared and mapped ones are not public")
    func addresses() throws {
        for a in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.1.1", "0.0.0.0",
                  "::1", "::", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "224.0.0.1", "64:ff9b::a00:1"] {
            #expect(!OutboundGuard.isPublic(a), "\(a)")
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] { #expect(OutboundGuard.isPublic(a), "\(a)") }
        #expect(throws: OutboundGuard.Refusal.self) { try OutboundGuard.parse("ftp://x.example/", schemes: ["http", "https"]) }
        #expect(throws: OutboundGuard.Refusal.self) { try OutboundGuard.parse("https://user:pw@x.example/", schemes: ["https"]) }
        #expect(try OutboundGuard.parse("https://[2001:db8::1]:8443/x", schemes: ["https"]).port == 8443)
        #expect(OutboundGuard.redacted("https://h/x?token=secret") == "https://h/x")
    }
}
