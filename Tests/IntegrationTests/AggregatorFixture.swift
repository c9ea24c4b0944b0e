import Configuration
import Foundation
import Logging
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Aggregator
@testable import Collector

/// A site, an in-process aggregator handler and helpers to build hydrated batches.
struct AggregatorFixture {
    let env: TestEnvironment
    let pool: TestThreadPool
    let db: PostgresClient
    let collectorDB: PostgresClient
    let redis: RedisConnection
    let catalog: SiteCatalog
    let configuration: AggregatorConfiguration
    let handler: AggregatorHandler

    /// The admin token of the fixture's configuration (opens every site).
    static let adminToken = "admin-token-for-tests-0123456789"

    /// The read key ``addSite(zone:props:)`` gives a site (one per site: suites run in parallel).
    static func readKey(_ site: Int64) -> String {
        let digits = String(site)
        return "trr_" + String(repeating: "0", count: max(0, 32 - digits.count)) + digits
    }

    init(redisDatabase: Int = 13, breakdownLimit: Int = 1000, now: Date = ISO8601.parse("2030-01-11T12:00:00Z")!) async throws {
        env = try TestEnvironment.current()
        pool = TestThreadPool(threads: 4)
        db = PostgresClient(configuration: env.postgres(role: "tributary_aggregator"), maximumConnections: 3, threadPool: pool.pool)
        collectorDB = PostgresClient(configuration: env.postgres(role: "tributary_collector"), maximumConnections: 1,
                                     threadPool: pool.pool)
        _ = try await collectorDB.withConnection { try await CollectorSchema.migrator.migrate(using: $0) }
        _ = try await db.withConnection { try await AggregatorSchema.migrator.migrate(using: $0) }
        var redisConfiguration = env.redis()
        redisConfiguration.database = redisDatabase
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        catalog = SiteCatalog(postgres: db, logger: Logger(label: "test"))
        var configuration = try AggregatorConfiguration(reader: ConfigReader(provider: InMemoryProvider(values: [:])))
        configuration.breakdownLimit = breakdownLimit
        configuration.adminToken = Self.adminToken
        self.configuration = configuration
        var handler = AggregatorHandler(postgres: db, catalog: catalog,
                                        realtime: Realtime(redis: redis, windowSeconds: configuration.realtimeWindowSeconds),
                                        configuration: configuration, logger: Logger(label: "test"))
        handler.now = { now }
        self.handler = handler
    }

    /// A new site in `zone` with a read key (``readKey(_:)``) and the given breakdown properties.
    func addSite(zone: String = "America/New_York", props: [String] = ["plan"]) async throws -> Int64 {
        let row = try await collectorDB.query("""
            INSERT INTO collector.sites (name, time_zone, stats_props) VALUES ($1, $2, $3::jsonb) RETURNING site_id
            """, [TestEnvironment.uniqueName("stats"), zone,
                  PostgresValue.json(String(decoding: try JSONEncoder().encode(props), as: UTF8.self))])
        let site = try row.first?.int("site_id") ?? 0
        try await collectorDB.query("""
            INSERT INTO collector.write_keys (site_id, key_prefix, key_hash, kind) VALUES ($1, $2, $3, 'read')
            """, [site, String(Self.readKey(site).prefix(12)), WriteKey.hash(Self.readKey(site))])
        try await catalog.refresh()
        return site
    }

    /// A hydrated event as hydration would send it.
    static func event(_ id: Int64, _ type: String, at time: String, visitor: String, previous: String? = nil,
                      path: String? = nil, name: String? = nil, source: String? = nil, country: String? = nil,
                      browser: String? = "Chrome", bot: Bool = false, utm: String? = nil,
                      props: [String: JSONValue]? = nil) -> JSONValue {
        var enrichment: [String: JSONValue] = ["isBot": .bool(bot)]
        if let path { enrichment["path"] = .string(path); enrichment["url"] = .string("https://s.example" + path) }
        if let source { enrichment["referrerSource"] = .string(source) }
        if let country { enrichment["country"] = .string(country) }
        if let browser { enrichment["browser"] = .string(browser) }
        if let utm { enrichment["utmSource"] = .string(utm) }
        var o: [String: JSONValue] = [
            "eventId": .int(id), "messageId": .string("m\(id)"), "type": .string(type), "timestamp": .string(time),
            "receivedAt": .string(time), "visitorHash": .string(visitor), "enrichment": .object(enrichment),
        ]
        if let previous { o["previousVisitorHash"] = .string(previous) }
        if let name { o["name"] = .string(name) }
        if let props { o["properties"] = .object(props) }
        return .object(o)
    }

    static func item(site: Int64, batch: Int64, _ events: [JSONValue]) -> QueueItem {
        let message: JSONValue = .object(["version": .int(1), "batchId": .int(batch), "siteId": .int(site),
                                          "events": .array(events)])
        return QueueItem(site: String(site), payload: message.serialized())
    }

    /// The daily row of (day, dim, value) as [visitors, carried, visits, pageviews, events, bounces, duration, visit_pageviews].
    func daily(_ site: Int64, _ day: String, _ dim: String = "", _ value: String = "") async throws -> [Int64] {
        guard let row = try await db.query("""
            SELECT visitors, visitors_carried, visits, pageviews, events, bounces, duration, visit_pageviews
            FROM aggregator.daily WHERE site_id = $1 AND day = $2::date AND dim = $3 AND value = $4
            """, [site, day, dim, value]).first else { return [] }
        return try ["visitors", "visitors_carried", "visits", "pageviews", "events", "bounces", "duration", "visit_pageviews"]
            .map { try row.int($0) ?? 0 }
    }

    /// Every rollup row of a site, as text, for comparing two sites' numbers.
    func snapshot(_ site: Int64) async throws -> [String] {
        let daily = try await db.query("""
            SELECT day::text || '|' || dim || '|' || value || '|' || visitors || '|' || visitors_carried || '|' || visits || '|'
                   || pageviews || '|' || events || '|' || bounces || '|' || duration || '|' || visit_pageviews AS r
            FROM aggregator.daily WHERE site_id = $1 ORDER BY 1
            """, [site]).rows.map { try $0.string("r") ?? "" }
        let hourly = try await db.query("""
            SELECT hour::text || '|' || visitors || '|' || visits || '|' || pageviews || '|' || events || '|' || bounces || '|'
                   || duration || '|' || visit_pageviews AS r
            FROM aggregator.hourly WHERE site_id = $1 ORDER BY 1
            """, [site]).rows.map { try $0.string("r") ?? "" }
        return daily + hourly
    }
}
