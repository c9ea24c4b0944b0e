import Foundation
import Logging
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime
import TributaryTesting
@testable import Hydration
import Collector
import Forwarder

/// Hydration routes each stored event by the sinks' rules in `forwarder.sinks`.
@Suite("Hydration routing to sinks", .serialized)
struct HydrationRoutingTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)
    let db: PostgresClient
    let forwarderDB: PostgresClient
    let collectorDB: PostgresClient
    let redis: RedisConnection
    let handler: HydrationHandler
    let rules: SinkRules
    let settings: SiteSettings

    init() async throws {
        env = try TestEnvironment.current()
        db = PostgresClient(configuration: env.postgres(role: "tributary_hydration"), maximumConnections: 2, threadPool: pool.pool)
        forwarderDB = PostgresClient(configuration: env.postgres(role: "tributary_forwarder"), maximumConnections: 1, threadPool: pool.pool)
        collectorDB = PostgresClient(configuration: env.postgres(role: "tributary_collector"), maximumConnections: 1, threadPool: pool.pool)
        _ = try await collectorDB.withConnection { try await CollectorSchema.migrator.migrate(using: $0) }
        _ = try await forwarderDB.withConnection { try await ForwarderSchema.migrator.migrate(using: $0) }
        _ = try await db.withConnection { try await HydrationSchema.migrator.migrate(using: $0) }
        var redisConfiguration = env.redis()
        redisConfiguration.database = 8
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        let partitions = EventPartitions(postgres: db, weeksAhead: 2, retentionWeeks: 60, logger: Logger(label: "test"))
        try await partitions.ensure(around: Date())
        rules = SinkRules(postgres: db, logger: Logger(label: "test"))
        settings = SiteSettings(postgres: db, logger: Logger(label: "test"))
        var handler = HydrationHandler(postgres: db, aggregate: ReliableQueue(name: "aggregate", connection: redis),
                                       salt: VisitorSalt(redis: redis), validator: EventValidator(),
                                       enricher: EventEnricher(clock: EventClock()), partitions: partitions,
                                       ids: SnowflakeID(instance: 901), dedupWindowDays: 7, visitorContinuitySeconds: 0,
                                       logger: Logger(label: "test"))
        handler.routing = { [rules, settings] in
            guard rules.isLoaded else { throw DaemonError("rules not loaded") }
            return EventRouter(rules: rules.current, isStoreOnly: { settings.isStoreOnly($0) })
        }
        self.handler = handler
    }

    func addSite(storeOnly: Bool = false) async throws -> Int64 {
        try await collectorDB.query("INSERT INTO collector.sites (name, store_only) VALUES ($1, $2) RETURNING site_id",
                                    [TestEnvironment.uniqueName("route"), storeOnly]).first?.int("site_id") ?? 0
    }

    func addSink(_ type: String, name: String = TestEnvironment.uniqueLetters("s"), sites: [Int64] = [], types: [String] = [],
                 names: [String] = [], disabled: Bool = false) async throws -> (id: Int64, name: String) {
        let id = try await forwarderDB.query("""
            INSERT INTO forwarder.sinks (name, type, url, sites, event_types, event_names, disabled_at)
            VALUES ($1, $2, 'https://example.com/', $3::bigint[], $4::text[], $5::text[], CASE WHEN $6 THEN now() END)
            RETURNING sink_id
            """, [name, type, PostgresArray.ints(sites), PostgresArray.text(types), PostgresArray.text(names), disabled]).first?.int("sink_id") ?? 0
        return (id, name)
    }

    /// The message ids waiting in a queue for a site.
    func queued(_ queue: String, site: Int64) async throws -> [String] {
        let items = try await redis.send("LRANGE", QueueKeys(name: queue).site(String(site)), 0, -1).array ?? []
        var ids: [String] = []
        for item in items {
            guard let bytes = item.bytes, let message = try? TributaryJSON.decode(HydratedBatchMessage.self, from: bytes) else { continue }
            ids += message.events.map(\.messageID)
        }
        return ids.sorted()
    }

    func process(site: Int64, batch: Int64, _ events: [String]) async throws {
        let m = RawBatchMessage(batchID: batch, siteID: site, receivedAt: Date(), clientIP: "203.0.113.5",
                                userAgent: "Mozilla/5.0 Test", eventCount: events.count,
                                payload: #"{"batch":[\#(events.joined(separator: ","))]}"#)
        try await handler.handle([QueueItem(site: String(site), payload: try TributaryJSON.encode(m))])
    }

    @Test("each event goes to the sinks whose sites, types, names and integrations match; counts in the ledger")
    func rulesApplied() async throws {
        let site = try await addSite()
        let other = try await addSite()
        let all = try await addSink("webhook")
        let bought = try await addSink("mixpanel", sites: [site], names: ["Bought"])
        let metrics = try await addSink("statsd", sites: [site])
        let elsewhere = try await addSink("webhook", sites: [other])
        let identifies = try await addSink("segment", sites: [site], types: ["identify"])
        let off = try await addSink("webhook", sites: [site], disabled: true)
        try await rules.refresh()
        await settings.refresh()
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(site: site, batch: batch, [
            #"{"type":"page","anonymousId":"a","messageId":"p1"}"#,
            #"{"type":"track","userId":"u","event":"Bought","messageId":"t2"}"#,
            #"{"type":"track","userId":"u","event":"Bought","messageId":"t3","integrations":{"Webhooks":false}}"#,
            #"{"type":"track","userId":"u","event":"Other","messageId":"t4","integrations":{"All":false,"\#(all.name)":true}}"#,
            #"{"type":"identify","userId":"u","messageId":"i1","traits":{"plan":"pro"}}"#,
            #"{"type":"metric","name":"latency","kind":"timer","value":3,"messageId":"m1"}"#,
        ])
        #expect(try await queued(QueueName.forward(sinkID: all.id), site: site) == ["i1", "p1", "t2", "t4"])
        #expect(try await queued(QueueName.forward(sinkID: bought.id), site: site) == ["t2", "t3"])
        #expect(try await queued(QueueName.forward(sinkID: metrics.id), site: site) == ["m1"])
        #expect(try await queued(QueueName.forward(sinkID: identifies.id), site: site) == ["i1"])
        #expect(try await queued(QueueName.forward(sinkID: elsewhere.id), site: site).isEmpty)
        #expect(try await queued(QueueName.forward(sinkID: off.id), site: site).isEmpty)
        #expect(try await queued(QueueName.aggregate, site: site) == ["i1", "p1", "t2", "t3", "t4"])
        let routed = try await db.query("SELECT routed::text AS r FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2",
                                        [site, batch]).first?.string("r") ?? ""
        // Other suites' sinks (for every site) exist in the same database: only this test's are compared.
        let mine = Set(["aggregate"] + [all, bought, metrics, elsewhere, identifies, off].map { "forward:\($0.id)" })
        let counts = (try JSONSerialization.jsonObject(with: Data(routed.utf8)) as? [String: Int])?.filter { mine.contains($0.key) }
        #expect(counts == ["aggregate": 5, "forward:\(all.id)": 4, "forward:\(bought.id)": 2, "forward:\(metrics.id)": 1,
                           "forward:\(identifies.id)": 1])
        // Sent again (a redelivered raw batch): the same events go to the same sinks again, the integrations map included.
        try await process(site: site, batch: batch, [#"{"type":"page","anonymousId":"a","messageId":"ignored"}"#])
        #expect(try await queued(QueueName.forward(sinkID: bought.id), site: site) == ["t2", "t2", "t3", "t3"])
        #expect(try await queued(QueueName.forward(sinkID: all.id), site: site).count == 8)
    }

    @Test("a store-only site's events are stored and sent nowhere")
    func storeOnly() async throws {
        let site = try await addSite(storeOnly: true)
        let all = try await addSink("webhook")
        try await rules.refresh()
        await settings.refresh()
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(site: site, batch: batch, [#"{"type":"track","userId":"u","event":"X","messageId":"s1"}"#])
        #expect(try await db.query("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1", [site]).first?.int("n") == 1)
        #expect(try await queued(QueueName.forward(sinkID: all.id), site: site).isEmpty)
        #expect(try await queued(QueueName.aggregate, site: site).isEmpty)
    }

    @Test("until the sinks' rules are read, nothing is routed: the batch waits")
    func rulesRequired() async throws {
        let unloaded = SinkRules(postgres: db, logger: Logger(label: "test"))
        var waiting = handler
        waiting.routing = {
            guard unloaded.isLoaded else { throw DaemonError("rules not loaded") }
            return EventRouter(rules: unloaded.current, isStoreOnly: { _ in false })
        }
        let site = try await addSite()
        let m = RawBatchMessage(batchID: 1, siteID: site, receivedAt: Date(), clientIP: nil, userAgent: nil, eventCount: 1,
                                payload: #"{"batch":[{"type":"track","userId":"u","event":"X"}]}"#)
        await #expect(throws: DaemonError.self) {
            try await waiting.handle([QueueItem(site: String(site), payload: try TributaryJSON.encode(m))])
        }
        #expect(try await db.query("SELECT count(*) AS n FROM hydration.ledger WHERE site_id = $1", [site]).first?.int("n") == 0)
    }
}
