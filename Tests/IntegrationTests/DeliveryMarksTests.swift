import Foundation
import Testing
import TributaryModels
import TributaryPostgres
import TributaryTesting
@testable import Forwarder

/// The forwarder's check of what a sink already has, against a real PostgreSQL.
@Suite("Forwarder delivery marks")
struct DeliveryMarksTests {
    @Test("the already-delivered check probes each event's mark by key, even with statistics from before the sink's first marks")
    func undeliveredProbesByKey() async throws {
        let env = try TestEnvironment.current()
        let pool = TestThreadPool(threads: 2)
        let db = PostgresClient(configuration: env.postgres(role: "tributary_forwarder"), maximumConnections: 1, threadPool: pool.pool)
        _ = try await db.withConnection { try await ForwarderSchema.migrator.migrate(using: $0) }
        let older = Int64.random(in: 1_000_000...(Int64.max / 4)), newer = older + 1
        let site = Int64.random(in: 1_000_000...(Int64.max / 4))
        func mark(_ sink: Int64, _ ids: ClosedRange<Int>) async throws {
            try await db.query("""
                INSERT INTO forwarder.deliveries (site_id, sink_id, event_id, message_id, attempts)
                SELECT $1, $2, g, 'm-' || g, 1 FROM generate_series($3::int, $4::int) AS g
                """, [site, sink, ids.lowerBound, ids.upperBound])
        }
        // Many marks of one sink, in the statistics; then another sink's, not yet in them.
        try await mark(older, 1...20_000)
        try await db.query("ANALYZE forwarder.deliveries")
        try await mark(newer, 1...2_000)
        defer { Task { [db] in _ = try? await db.query("DELETE FROM forwarder.deliveries WHERE site_id = $1", [site]) } }

        let ids = Array(1_901...2_100)  // 100 marked, 100 not
        let events = ids.compactMap { ForwardEvent(object: ["eventId": .int(Int64($0)), "messageId": .string("m-\($0)")], siteID: site) }
        let left = try await DeliveryStore.undelivered(db, sink: newer, events: events)
        #expect(left.map(\.eventID) == (2_001...2_100).map(Int64.init))

        let plan = try await db.query("EXPLAIN " + DeliveryStore.undeliveredSQL, [
            newer, PostgresArray.ints(events.map(\.siteID)), PostgresArray.ints(events.map(\.eventID)),
        ]).rows.map { try $0.string("QUERY PLAN") ?? "" }.joined(separator: "\n")
        #expect(plan.contains("deliveries_pkey") && !plan.contains("Seq Scan on deliveries"), "\(plan)")
    }
}
