import Foundation
import Logging
import Testing
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryTesting
@testable import Hydration
import Collector

@Suite("Hydration against real servers", .serialized)
struct HydrationTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 6)
    let db: PostgresClient
    let redis: RedisConnection
    let handler: HydrationHandler
    let site = Int64.random(in: 1_000_000...9_000_000)

    init() async throws {
        env = try TestEnvironment.current()
        db = PostgresClient(configuration: env.postgres(role: "tributary_hydration"), maximumConnections: 2, threadPool: pool.pool)
        var redisConfiguration = env.redis()
        redisConfiguration.database = 11
        redis = RedisConnection(configuration: redisConfiguration, threadPool: pool.pool)
        _ = try await db.withConnection { try await HydrationSchema.migrator.migrate(using: $0) }
        let partitions = EventPartitions(postgres: db, weeksAhead: 2, retentionWeeks: 60, logger: Logger(label: "test"))
        try await partitions.ensure(around: Date())
        handler = HydrationHandler(postgres: db, aggregate: ReliableQueue(name: "aggregate", connection: redis),
                                   salt: VisitorSalt(redis: redis), validator: EventValidator(),
                                   enricher: EventEnricher(clock: EventClock(), geo: try GeoIP(path: env.geoDatabase),
                                                           userAgents: try UserAgentParser(path: "/usr/share/uap-core/regexes.yaml")),
                                   partitions: partitions,
                                   ids: SnowflakeID(instance: 900), dedupWindowDays: 7, visitorContinuitySeconds: 1800,
                                   logger: Logger(label: "test"))
    }

    func message(_ batch: Int64, _ events: [String], receivedAt: Date = Date(), sentAt: String? = nil,
                 context: String? = nil) -> RawBatchMessage {
        var payload = #"{"batch":[\#(events.joined(separator: ","))]"#
        if let sentAt { payload += #","sentAt":"\#(sentAt)""# }
        if let context { payload += #","context":\#(context)"# }
        payload += "}"
        return RawBatchMessage(batchID: batch, siteID: site, receivedAt: receivedAt, clientIP: "203.0.113.5",
                               userAgent: "Mozilla/5.0 Test", eventCount: events.count, payload: payload)
    }

    func process(_ m: RawBatchMessage) async throws {
        try await handler.handle([QueueItem(site: String(m.siteID), payload: try TributaryJSON.encode(m))])
    }

    func count(_ sql: String, _ params: [any PostgresEncodable]) async throws -> Int64 {
        try await db.query(sql, params).first?.int("n") ?? -1
    }

    @Test("ids holding a NUL are compared as stored (U+FFFD): the event is stored once, a resend is a duplicate, traits are found")
    func idsWithNUL() async throws {
        let batch = Int64.random(in: 1...Int64.max / 2)
        let user = #"u\u0000\#(batch)"#
        let track = #"{"type":"track","userId":"\#(user)","event":"Bought","messageId":"m\u0000\#(batch)"}"#
        try await process(message(batch, [
            #"{"type":"identify","userId":"\#(user)","traits":{"plan":"pro"},"timestamp":"\#(Self.day(-1))T10:00:00Z"}"#, track,
        ]))
        try await process(message(batch + 1, [track]))
        let stored = try await db.query("""
            SELECT user_id, traits->>'plan' AS plan FROM hydration.events WHERE site_id = $1 AND message_id = $2
            """, [site, "m\u{FFFD}\(batch)"]).rows
        #expect(stored.count == 1)
        #expect(try stored.first?.string("user_id") == "u\u{FFFD}\(batch)")
        #expect(try stored.first?.string("plan") == "pro")
        let ledgers = try await db.query("""
            SELECT events_stored AS s, events_duplicate AS d FROM hydration.ledger
            WHERE site_id = $1 AND batch_id IN ($2, $3) ORDER BY batch_id
            """, [site, batch, batch + 1])
        #expect(try ledgers.rows.map { [try $0.int("s"), try $0.int("d")] } == [[2, 0], [0, 1]])
    }

    @Test("a raw batch becomes stored events, failures with reasons, a ledger row and one aggregate message")
    func batchApplied() async throws {
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(message(batch, [
            #"{"type":"page","anonymousId":"a1","messageId":"p1","context":{"ip":"198.51.100.7","page":{"url":"https://s.example/x?utm_source=nl","referrer":"https://www.bing.com/"}}}"#,
            #"{"type":"track","userId":"u1","messageId":"t1"}"#,
            #"{"type":"track","userId":"u1","event":"Bought","messageId":"t2","properties":{"n":"a\u0000b"}}"#,
            #"{"type":"track","userId":"u1","event":"Bought","messageId":"t2"}"#,
            #"{"type":"metric","name":"latency","kind":"timer","value":3.5}"#,
        ]))
        #expect(try await count("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1 AND batch_id = $2", [site, batch]) == 3)
        let failure = try #require(try await db.query(
            "SELECT position, rule, field FROM hydration.failed_events WHERE site_id = $1 AND batch_id = $2", [site, batch]).first)
        #expect(try failure.int("position") == 1)
        #expect(try failure.string("rule") == "missing_event_name")
        #expect(try failure.string("field") == "event")
        let ledger = try #require(try await db.query(
            "SELECT * FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2", [site, batch]).first)
        #expect(try ledger.int("events_received") == 5)
        #expect(try ledger.int("events_stored") == 3)
        #expect(try ledger.int("events_rejected") == 1)
        #expect(try ledger.int("events_duplicate") == 1)
        // The ledger row's id range finds exactly the batch's stored events (the tracer,
        // the ties and resends go that way); a batch that stored none has no range.
        #expect(try await count("""
            SELECT count(*) AS n FROM hydration.ledger l JOIN hydration.events e ON \(HydrationLedgerSQL.events)
            WHERE l.site_id = $1 AND l.batch_id = $2
            """, [site, batch]) == 3)
        let rejectedOnly = batch + 1
        try await process(message(rejectedOnly, [#"{"type":"track","userId":"u1","messageId":"t9"}"#]))
        #expect(try await count("""
            SELECT count(*) AS n FROM hydration.ledger
            WHERE site_id = $1 AND batch_id = $2 AND first_event_id IS NULL AND last_event_id IS NULL
            """, [site, rejectedOnly]) == 1)
        // A hydration from before the range (still running in a rolling upgrade) records
        // counts without it: refused, so its turn rolls back and a current one applies it.
        let refused = await #expect(throws: PostgresError.self) {
            try await db.query("UPDATE hydration.ledger SET events_stored = 1 WHERE site_id = $1 AND batch_id = $2",
                               [site, rejectedOnly])
        }
        #expect(refused?.sqlState == "23514")
        let page = try #require(try await db.query("""
            SELECT enrichment::text AS e, context::text AS c, visitor_hash FROM hydration.events
            WHERE site_id = $1 AND message_id = 'p1'
            """, [site]).first)
        #expect(try page.string("e")?.contains(#""referrerSource": "Bing""#) == true)
        #expect(try page.string("e")?.contains(#""utmSource": "nl""#) == true)
        #expect(try page.string("c")?.contains("198.51.100.7") == false, "the raw IP must not be stored")
        let queued = try await redis.send("LRANGE", "{aggregate}:site:\(site)", 0, -1).array ?? []
        let forBatch = try queued.compactMap { $0.bytes }.map { try TributaryJSON.decode(HydratedBatchMessage.self, from: $0) }
            .filter { $0.batchID == batch }
        #expect(forBatch.count == 1)
        #expect(forBatch.first?.events.count == 2, "metrics do not go to the aggregator")
    }

    @Test("duplicates are stored once across batches and replays; a replayed batch is re-sent, not re-applied")
    func dedupAndReplay() async throws {
        let first = Int64.random(in: 1...Int64.max / 2)
        let second = first + 1
        let ids = (0..<5).map { "dup-\(first)-\($0)" }
        let events = ids.map { #"{"type":"track","userId":"u","event":"E","messageId":"\#($0)"}"# }
        let m = message(first, events)
        try await process(m)
        try await process(message(second, events))
        try await process(m)
        #expect(try await count("SELECT count(*) AS n FROM hydration.events WHERE site_id = $1 AND message_id = ANY($2::text[])",
                                [site, PostgresArray.text(ids)]) == 5)
        #expect(try await count("SELECT events_duplicate AS n FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2",
                                [site, second]) == 5)
        let queued = try await redis.send("LRANGE", "{aggregate}:site:\(site)", 0, -1).array ?? []
        let copies = try queued.compactMap { $0.bytes }.map { try TributaryJSON.decode(HydratedBatchMessage.self, from: $0) }
            .filter { $0.batchID == first }
        #expect(copies.count == 2, "the replay re-sends the stored events")
        #expect(copies.first == copies.last)
    }

    /// A day of the traits tests' timelines, `offset` days from yesterday (UTC), as
    /// `YYYY-MM-DD`: relative to now, so their identify calls never grow older than
    /// `traitsHistoryDays`, where another suite's hydration daemon would fold them mid-test.
    static func day(_ offset: Int) -> String {
        String(ISO8601.format(yesterday.addingTimeInterval(Double(offset) * 86_400)).prefix(10))
    }

    static let yesterday = Date().addingTimeInterval(-86_400)

    @Test("events carry the user's traits as they were at the event's time, through aliases")
    func traitsAsOfEventTime() async throws {
        let user = "user-\(UInt32.random(in: 0...UInt32.max))"
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(message(batch, [
            #"{"type":"identify","userId":"\#(user)","traits":{"plan":"free","email":"a@x"},"timestamp":"\#(Self.day(-5))T10:00:00Z"}"#,
            #"{"type":"identify","userId":"\#(user)","traits":{"plan":"pro"},"timestamp":"\#(Self.day(-3))T10:00:00Z"}"#,
            #"{"type":"alias","previousId":"old-\#(user)","userId":"\#(user)"}"#,
        ], receivedAt: ISO8601.parse("\(Self.day(0))T10:00:00Z")!))
        let later = batch + 1
        try await process(message(later, [
            #"{"type":"track","userId":"\#(user)","event":"A","messageId":"tr-a-\#(user)","timestamp":"\#(Self.day(-4))T10:00:00Z"}"#,
            #"{"type":"track","userId":"old-\#(user)","event":"B","messageId":"tr-b-\#(user)","timestamp":"\#(Self.day(-2))T10:00:00Z"}"#,
        ], receivedAt: ISO8601.parse("\(Self.day(0))T10:00:00Z")!))
        let rows = try await db.query("""
            SELECT message_id, traits->>'plan' AS plan, traits->>'email' AS email FROM hydration.events
            WHERE site_id = $1 AND batch_id = $2 ORDER BY message_id
            """, [site, later]).rows
        #expect(try rows.map { try $0.string("plan") } == ["free", "pro"])
        #expect(try rows.map { try $0.string("email") } == ["a@x", "a@x"])
    }

    @Test("one turn of several sites: dedup, traits and aliases stay per site; a repeated batch is re-sent")
    func severalSitesInOneTurn() async throws {
        let other = site + 10_000_000
        let user = "user-\(UInt32.random(in: 0...UInt32.max))"
        let base = Int64.random(in: 1...Int64.max / 2)
        func raw(_ site: Int64, _ batch: Int64, _ events: [String]) -> QueueItem {
            let m = RawBatchMessage(batchID: batch, siteID: site, receivedAt: ISO8601.parse("\(Self.day(0))T10:00:00Z")!,
                                    clientIP: "203.0.113.5", userAgent: "Mozilla/5.0 Test", eventCount: events.count,
                                    payload: #"{"batch":[\#(events.joined(separator: ","))]}"#)
            return QueueItem(site: String(site), payload: try! TributaryJSON.encode(m))
        }
        let earlier = raw(site, base, [#"{"type":"track","userId":"x","event":"E","messageId":"early-\#(base)"}"#])
        try await handler.handle([earlier])
        try await handler.handle([
            raw(site, base + 1, [
                #"{"type":"identify","userId":"\#(user)","traits":{"plan":"free"},"timestamp":"\#(Self.day(-5))T10:00:00Z"}"#,
                #"{"type":"alias","previousId":"old-\#(user)","userId":"\#(user)"}"#,
                #"{"type":"track","userId":"\#(user)","event":"E","messageId":"shared-\#(user)","timestamp":"\#(Self.day(-4))T10:00:00Z"}"#,
            ]),
            raw(other, base + 2, [
                #"{"type":"identify","userId":"\#(user)","traits":{"plan":"pro"},"timestamp":"\#(Self.day(-5))T10:00:00Z"}"#,
                #"{"type":"track","userId":"old-\#(user)","event":"E","messageId":"shared-\#(user)","timestamp":"\#(Self.day(-4))T10:00:00Z"}"#,
                #"{"type":"track","userId":"\#(user)","event":"F","messageId":"f-\#(user)","timestamp":"\#(Self.day(-4))T10:00:00Z"}"#,
            ]),
            earlier,
            raw(site, base + 3, [
                #"{"type":"track","userId":"old-\#(user)","event":"G","messageId":"g-\#(user)","timestamp":"\#(Self.day(-4))T10:00:00Z"}"#,
                #"{"type":"track","userId":"\#(user)","event":"E","messageId":"shared-\#(user)"}"#,
            ]),
            raw(other, base + 4, [#"{"type":"track","userId":"x","event":"E","messageId":"twice-\#(user)"}"#]),
            raw(other, base + 4, [#"{"type":"track","userId":"x","event":"E","messageId":"twice-\#(user)"}"#]),
        ])
        func ledger(_ site: Int64, _ batch: Int64) async throws -> [Int64?] {
            let row = try #require(try await db.query("""
                SELECT events_received, events_stored, events_duplicate FROM hydration.ledger WHERE site_id = $1 AND batch_id = $2
                """, [site, batch]).first)
            return [try row.int("events_received"), try row.int("events_stored"), try row.int("events_duplicate")]
        }
        #expect(try await ledger(site, base) == [1, 1, 0], "the repeated batch is not applied again")
        #expect(try await ledger(site, base + 1) == [3, 3, 0])
        #expect(try await ledger(other, base + 2) == [3, 3, 0], "the same messageId on another site is not a duplicate")
        #expect(try await ledger(site, base + 3) == [2, 1, 1])
        #expect(try await ledger(other, base + 4) == [1, 1, 0], "a batch taken twice in one turn is applied once")
        func plan(_ site: Int64, _ message: String) async throws -> String? {
            try await db.query("SELECT traits->>'plan' AS plan FROM hydration.events WHERE site_id = $1 AND message_id = $2",
                               [site, message]).first?.string("plan")
        }
        #expect(try await plan(site, "shared-\(user)") == "free")
        #expect(try await plan(site, "g-\(user)") == "free", "through this site's alias")
        #expect(try await plan(other, "shared-\(user)") == nil, "the alias belongs to the other site")
        #expect(try await plan(other, "f-\(user)") == "pro")
        func queued(_ site: Int64) async throws -> [Int64] {
            let items = try await redis.send("LRANGE", "{aggregate}:site:\(site)", 0, -1).array ?? []
            return try items.compactMap(\.bytes).map { try TributaryJSON.decode(HydratedBatchMessage.self, from: $0).batchID }
                .filter { $0 >= base && $0 <= base + 4 }.sorted()
        }
        #expect(try await queued(site) == [base, base, base + 1, base + 3], "the repeated batch is sent again")
        #expect(try await queued(other) == [base + 2, base + 4])
    }

    @Test("client clock skew is corrected from sentAt (the batch's, when the event has none)")
    func skew() async throws {
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(message(batch, [
            #"{"type":"track","userId":"u","event":"E","messageId":"skew-\#(batch)","timestamp":"2026-11-25T13:00:00.000Z"}"#,
        ], receivedAt: ISO8601.parse("2026-11-25T12:00:00.000Z")!, sentAt: "2026-11-25T13:00:10.000Z"))
        let row = try #require(try await db.query(
            "SELECT event_time, flags FROM hydration.events WHERE site_id = $1 AND batch_id = $2", [site, batch]).first)
        #expect(try row.date("event_time").map(ISO8601.format) == "2026-11-25T11:59:50.000Z")
        #expect(try row.string("flags") == "clock_corrected")
    }

    @Test("the daily salt rotates at midnight UTC, is shared, and expires within 48 hours")
    func saltRotation() async throws {
        let salts = VisitorSalt(redis: redis)
        let day = ISO8601.parse("2030-01-01T23:59:59.000Z")!
        _ = try await redis.send("DEL", VisitorSalt.key(day: "2030-01-01"), VisitorSalt.key(day: "2030-01-02"))
        let a = try await salts.salt(for: day)
        let b = try await salts.salt(for: day.addingTimeInterval(0.5))
        let c = try await salts.salt(for: day.addingTimeInterval(2))
        #expect(a == b)
        #expect(a != c)
        #expect(try await VisitorSalt(redis: redis).salt(for: day) == a, "another instance gets the same salt")
        let ttl = try await redis.send("TTL", VisitorSalt.key(day: "2030-01-02")).integer ?? 0
        #expect(ttl > 47 * 3600 && ttl <= 48 * 3600)
    }

    @Test("shortly after midnight UTC an event also carries its visitor's hash under yesterday's salt")
    func visitorContinuity() async throws {
        let salts = VisitorSalt(redis: redis)
        _ = try await redis.send("DEL", VisitorSalt.key(day: "2030-02-01"), VisitorSalt.key(day: "2030-02-02"))
        let evening = ISO8601.parse("2030-02-01T23:50:00.000Z")!
        let yesterday = try await salts.salt(for: evening)
        let justAfter = ISO8601.parse("2030-02-02T00:10:00.000Z")!
        #expect(try await salts.previousSalt(for: justAfter, continuity: 1800) == yesterday)
        #expect(try await salts.previousSalt(for: justAfter.addingTimeInterval(1800), continuity: 1800) == nil,
                "after the window there is no previous hash")
        #expect(try await salts.previousSalt(for: justAfter, continuity: 0) == nil, "0 turns it off")
        #expect(try await VisitorSalt(redis: redis).previousSalt(for: ISO8601.parse("2030-02-05T00:01:00Z")!,
                                                                  continuity: 1800) == nil,
                "a missing salt of yesterday is not created")
        let batch = Int64.random(in: 1...Int64.max / 2)
        let m = message(batch, [#"{"type":"page","anonymousId":"a","messageId":"cont-\#(batch)","timestamp":"2030-02-02T00:09:59Z"}"#],
                        receivedAt: justAfter)
        try await EventPartitions(postgres: db, weeksAhead: 1, retentionWeeks: 600, logger: Logger(label: "test"))
            .ensure(around: justAfter)
        try await process(m)
        let row = try #require(try await db.query("""
            SELECT visitor_hash, previous_visitor_hash FROM hydration.events WHERE site_id = $1 AND batch_id = $2
            """, [site, batch]).first)
        let expected = VisitorSalt.visitorHash(salt: yesterday, site: site, ip: m.clientIP, userAgent: m.userAgent)
        #expect(try row.string("previous_visitor_hash") == expected)
        #expect(try row.string("visitor_hash") != expected)
    }

    @Test("weekly partitions are created ahead and dropped after the retention")
    func partitions() async throws {
        let keeper = EventPartitions(postgres: db, weeksAhead: 3, retentionWeeks: 2, logger: Logger(label: "test"))
        let old = ISO8601.parse("2020-03-04T00:00:00Z")!
        try await keeper.ensure(around: old)
        let name = EventPartitions.name(EventPartitions.weekStart(old))
        #expect(try await count("SELECT count(*) AS n FROM pg_class WHERE relname = $1", [name]) == 1)
        let ahead = EventPartitions.name(EventPartitions.weekStart(old.addingTimeInterval(3 * 7 * 86_400)))
        #expect(try await count("SELECT count(*) AS n FROM pg_class WHERE relname = $1", [ahead]) == 1)
        // ANALYZE skips the free-form columns of a new partition, as of the parent (migration 10).
        for table in ["hydration.events", "hydration.\(ahead)"] {
            let skipped = try await db.query("""
                SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND attstattarget = 0 ORDER BY attname
                """, [table]).rows.map { try $0.string("attname") ?? "" }
            #expect(skipped == EventPartitions.columnsWithoutStatistics.sorted(), "\(table)")
        }
        let dropped = try await keeper.dropExpired(now: ISO8601.parse("2020-06-01T00:00:00Z")!)
        #expect(dropped.contains(name))
        #expect(try await count("SELECT count(*) AS n FROM pg_class WHERE relname = $1", [name]) == 0)
        // The dedup rows go with the partitions (and never before the dedup window ends). Times
        // in the future and this test's site only: the daemons other suites run prune too.
        let site = Int64.random(in: 1...Int64.max / 2)
        let pruner = EventPartitions(postgres: db, weeksAhead: 3, retentionWeeks: 2, logger: Logger(label: "test"), dedupWindowDays: 21)
        let future = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3_000 * 86_400).rounded())
        try await db.query("""
            INSERT INTO hydration.message_ids (site_id, message_id, first_seen, batch_id)
            SELECT $1, 'm-' || g, $2::timestamptz + make_interval(days => g), 1 FROM generate_series(0, 30) AS g
            """, [site, future.addingTimeInterval(-42 * 86_400)])
        // Cut-off: 21 days (the longer of two weeks' retention and the 21-day window): 21 of the 31 go.
        #expect(try await pruner.pruneMessageIDs(now: future, sites: [site]) == 21)
        #expect(try await count("SELECT count(*) AS n FROM hydration.message_ids WHERE site_id = $1", [site]) == 10)
        #expect(try await count("SELECT count(*) AS n FROM hydration.message_ids WHERE site_id = $1 AND first_seen < $2",
                                [site, future.addingTimeInterval(-21 * 86_400)]) == 0)
        // Many rows, with a gap of years before them: windows grow, shrink and jump, and all go.
        try await db.query("""
            INSERT INTO hydration.message_ids (site_id, message_id, first_seen, batch_id)
            SELECT $1, 'many-' || g, $2::timestamptz + make_interval(secs => g * 0.05), 1 FROM generate_series(1, 50000) AS g
            """, [site, future.addingTimeInterval(-2_000 * 86_400)])
        #expect(try await pruner.pruneMessageIDs(now: future, sites: [site]) == 50_000)
        #expect(try await count("SELECT count(*) AS n FROM hydration.message_ids WHERE site_id = $1", [site]) == 10)
    }

    @Test("identify traits older than the history are folded into one row per user, later values winning")
    func foldOldTraits() async throws {
        let site = Int64.random(in: 1...Int64.max / 2)
        // In the future and this test's sites only: the daemons other suites run fold too.
        let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3_000 * 86_400).rounded())
        func day(_ n: Double) -> Date { now.addingTimeInterval(-n * 86_400) }
        let rows: [(String, Date, String)] = [
            ("u1", day(200), #"{"a":1,"b":1}"#), ("u1", day(150), #"{"b":2}"#), ("u1", day(100), #"{"c":3}"#),
            ("u1", day(10), #"{"a":9}"#), ("u2", day(300), #"{"x":1}"#),
        ]
        for (user, time, traits) in rows {
            try await db.query("INSERT INTO hydration.user_traits (site_id, user_id, valid_from, traits) VALUES ($1, $2, $3, $4::jsonb)",
                               [site, user, time, traits])
        }
        // Many users on another site: more than one statement's chunk of them.
        let busy = site + 1
        try await db.query("""
            INSERT INTO hydration.user_traits (site_id, user_id, valid_from, traits)
            SELECT $1, 'many-' || g, $2::timestamptz - make_interval(days => h), jsonb_build_object('h', h)
            FROM generate_series(1, 2500) AS g, generate_series(100, 101) AS h
            """, [busy, now])
        let keeper = EventPartitions(postgres: db, weeksAhead: 1, retentionWeeks: 600, logger: Logger(label: "test"), traitsHistoryDays: 90)
        #expect(try await keeper.foldOldTraits(now: now, sites: [site, busy]) == 2 + 2_500)
        #expect(try await count("""
            SELECT count(*) AS n FROM hydration.user_traits WHERE site_id = $1 AND traits = '{"h": 100}'::jsonb
            """, [busy]) == 2_500, "each user keeps one row, with the later value")
        let kept = try await db.query("""
            SELECT user_id, valid_from, traits::text AS t FROM hydration.user_traits WHERE site_id = $1 ORDER BY user_id, valid_from
            """, [site]).rows.map { (try $0.string("user_id") ?? "", try $0.date("valid_from") ?? now, try $0.string("t") ?? "") }
        try #require(kept.map(\.0) == ["u1", "u1", "u2"])
        #expect(kept[0].1 == day(100) && kept[0].2 == #"{"a": 1, "b": 2, "c": 3}"#, "\(kept[0])")
        #expect(kept[1].1 == day(10) && kept[1].2 == #"{"a": 9}"#)
        #expect(kept[2].1 == day(300), "a single old row is left as it is")
        #expect(try await keeper.foldOldTraits(now: now, sites: [site, busy]) == 0, "folding again changes nothing")
        #expect(try await count("SELECT count(*) AS n FROM hydration.user_traits WHERE site_id = $1", [site]) == 3)
    }

    @Test("geo on real data and user agents by the uap-core rules")
    func geoAndUserAgents() async throws {
        let batch = Int64.random(in: 1...Int64.max / 2)
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
        let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        try await process(message(batch, [
            #"{"type":"page","anonymousId":"g1","messageId":"geo-\#(batch)-1","context":{"ip":"8.8.8.8","userAgent":"\#(chrome)"}}"#,
            #"{"type":"page","anonymousId":"g2","messageId":"geo-\#(batch)-2","context":{"ip":"81.2.69.160","userAgent":"\#(iphone)"}}"#,
            #"{"type":"page","anonymousId":"g3","messageId":"geo-\#(batch)-3","context":{"userAgent":"\#(googlebot)"}}"#,
        ]))
        let rows = try await db.query("""
            SELECT message_id, enrichment->>'country' AS country, enrichment->>'city' AS city, enrichment->>'browser' AS browser,
                   enrichment->>'os' AS os, enrichment->>'device' AS device, (enrichment->>'isBot')::boolean AS bot
            FROM hydration.events WHERE site_id = $1 AND batch_id = $2 ORDER BY message_id
            """, [site, batch]).rows
        #expect(rows.count == 3)
        #expect(try rows[0].string("country") == "US")
        #expect(try rows[0].string("browser") == "Chrome")
        #expect(try rows[0].string("os") == "Windows")
        #expect(try rows[0].string("device") == "desktop")
        #expect(try rows[1].string("country") == "GB")
        #expect(try rows[1].string("city") == "Willesden")
        #expect(try rows[1].string("browser") == "Mobile Safari")
        #expect(try rows[1].string("os") == "iOS")
        #expect(try rows[1].string("device") == "mobile")
        #expect(try rows[2].bool("bot") == true)
        #expect(try rows[2].string("device") == "bot")
    }

    @Test("a site that opted in keeps the raw IP in stored events; others never do")
    func rawIPOptIn() async throws {
        let collectorDB = PostgresClient(configuration: env.postgres(role: "tributary_collector"), maximumConnections: 1,
                                         threadPool: pool.pool)
        _ = try await collectorDB.withConnection { try await CollectorSchema.migrator.migrate(using: $0) }
        let optedIn = try #require(try await collectorDB.query("""
            INSERT INTO collector.sites (name, keep_raw_ip) VALUES ($1, true) RETURNING site_id
            """, [TestEnvironment.uniqueName("ipsite")]).first?.int("site_id"))
        let privacy = SiteSettings(postgres: db, logger: Logger(label: "test"))
        await privacy.refresh()
        var enricher = handler.enricher
        enricher.keepsRawIP = { privacy.keepsRawIP($0) }
        let keeping = HydrationHandler(postgres: db, aggregate: handler.aggregate, salt: handler.salt, validator: handler.validator,
                                       enricher: enricher, partitions: handler.partitions, ids: handler.ids,
                                       dedupWindowDays: 7, visitorContinuitySeconds: 1800, logger: Logger(label: "test"))
        for (site, expected) in [(optedIn, true), (self.site, false)] {
            let batch = Int64.random(in: 1...Int64.max / 2)
            var m = message(batch, [#"{"type":"page","anonymousId":"a","messageId":"ip-\#(batch)"}"#])
            m.siteID = site
            try await keeping.handle([QueueItem(site: String(site), payload: try TributaryJSON.encode(m))])
            let context = try await db.query("SELECT context->>'ip' AS ip FROM hydration.events WHERE site_id = $1 AND batch_id = $2",
                                             [site, batch]).first?.string("ip")
            #expect((context == "203.0.113.5") == expected)
        }
    }

    @Test("a batch-level context applies to every event; the event's own keys win")
    func batchContext() async throws {
        let batch = Int64.random(in: 1...Int64.max / 2)
        try await process(message(batch, [
            #"{"type":"page","anonymousId":"c1","messageId":"ctx-\#(batch)-1"}"#,
            #"{"type":"page","anonymousId":"c2","messageId":"ctx-\#(batch)-2","context":{"locale":"fr-FR"}}"#,
        ], context: #"{"ip":"8.8.8.8","locale":"en-US","library":{"name":"sdk"}}"#))
        let rows = try await db.query("""
            SELECT enrichment->>'country' AS country, context->>'locale' AS locale, context->>'ip' AS ip
            FROM hydration.events WHERE site_id = $1 AND batch_id = $2 ORDER BY message_id
            """, [site, batch]).rows
        #expect(try rows.map { try $0.string("country") } == ["US", "US"])
        #expect(try rows.map { try $0.string("locale") } == ["en-US", "fr-FR"])
        #expect(try rows.allSatisfy { try $0.string("ip") == nil })
    }
}
