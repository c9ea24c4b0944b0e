import Foundation
import Synchronization
import Testing
import TributaryHTTP
import TributaryPostgres
import TributaryTesting

extension DisruptiveTests {
    @Suite("Collector: outages of PostgreSQL and Redis lose nothing")
    struct CollectorOutageTests {
        let env: TestEnvironment

        init() throws {
            env = try TestEnvironment.current()
        }

        /// What a client was told: batch id → the messageIds in it.
        final class Ledger: Sendable {
            private let state = Mutex<(acked: [Int64: [String]], refused: Int, failed: Int)>(([:], 0, 0))
            func ack(_ id: Int64, _ messages: [String]) { state.withLock { $0.acked[id] = messages } }
            func refuse() { state.withLock { $0.refused += 1 } }
            func fail() { state.withLock { $0.failed += 1 } }
            var acked: [Int64: [String]] { state.withLock { $0.acked } }
            var refused: Int { state.withLock { $0.refused } }
        }

        /// Sends a 5-event batch every 50 ms until cancelled, recording every answer.
        func keepSending(_ collector: CollectorProcess, key: String, ledger: Ledger) async {
            var n = 0
            while !Task.isCancelled {
                n += 1
                let messages = (0..<5).map { "outage-\(n)-\($0)-\(UInt32.random(in: 0...UInt32.max))" }
                let events = messages.map { #"{"type":"track","event":"Tick","userId":"u","messageId":"\#($0)"}"# }
                let body = #"{"batch":[\#(events.joined(separator: ","))]}"#
                do {
                    let response = try await collector.send("/v1/batch", key: key, json: body)
                    if response.status == 200, let id = response.batchID { ledger.ack(id, messages) } else { ledger.refuse() }
                } catch {
                    ledger.fail()
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }

        /// Every acknowledged batch is in the raw table exactly once and in the queue exactly once.
        func verify(_ collector: CollectorProcess, site: Int64, ledger: Ledger) async throws {
            let acked = ledger.acked
            #expect(acked.count > 50, "the client got too few acknowledgements to prove anything")
            let settled = await eventually(timeout: .seconds(60)) {
                guard let queued = try? await collector.queuedBatchIDs(site: site) else { return false }
                return Set(acked.keys).isSubset(of: Set(queued))
            }
            #expect(settled, "not every acknowledged batch reached the queue")
            let rows = try await collector.db.query("""
                SELECT batch_id, count(*) AS copies, min(payload) AS payload FROM collector.raw_batches
                WHERE site_id = $1 GROUP BY batch_id
                """, [site]).rows
            var saved: [Int64: (Int64, String)] = [:]
            for row in rows { saved[try row.int("batch_id")!] = (try row.int("copies")!, try row.string("payload")!) }
            for (id, messages) in acked {
                let entry = try #require(saved[id], "acknowledged batch \(id) is not in the raw table")
                #expect(entry.0 == 1, "batch \(id) is stored \(entry.0) times")
                #expect(messages.allSatisfy { entry.1.contains($0) })
            }
            let queued = try await collector.queuedBatchIDs(site: site)
            var copies: [Int64: Int] = [:]
            for id in queued { copies[id, default: 0] += 1 }
            for id in acked.keys { #expect(copies[id] == 1, "batch \(id) is enqueued \(copies[id] ?? 0) times") }
            #expect(Set(queued).isSubset(of: Set(saved.keys)), "the queue holds a batch that is not stored")
            let outbox = try await collector.db.query("SELECT count(*) AS n FROM collector.outbox WHERE site_id = $1", [site])
            #expect(try outbox.first?.int("n") == 0)
            #expect(SpoolFolder.isEmpty(collector.spoolDirectory))
        }

        /// Sends steadily, keeps one server down for the outage time, brings it back, and
        /// checks that every acknowledged batch is stored once and enqueued once.
        func outage(redisDatabase: Int, stop: () async throws -> Void, start: () async throws -> Void,
                    what: String) async throws {
            let collector = CollectorProcess(env: env, redisDatabase: redisDatabase, disrupt: true)
            try await collector.start()
            defer { Task { await collector.stop() } }
            let site = try await collector.addSite()
            let ledger = Ledger()
            let sender = Task { await keepSending(collector, key: site.key, ledger: ledger) }
            try await Task.sleep(for: .seconds(2))
            try await stop()
            let before = ledger.acked.count
            try await Task.sleep(for: .seconds(env.outageSeconds))
            let duringOutage = ledger.acked.count - before
            try await start()
            try await Task.sleep(for: .seconds(3))
            sender.cancel()
            await sender.value
            #expect(duringOutage >= env.outageSeconds, "requests were not acknowledged while \(what) was down")
            #expect(ledger.refused == 0)
            try await verify(collector, site: site.id, ledger: ledger)
        }

        @Test("PostgreSQL down: requests are spooled, acknowledged, and drained once it returns")
        func postgresOutage() async throws {
            try await outage(redisDatabase: 1, stop: env.stopDisruptPostgres, start: env.startDisruptPostgres,
                             what: "PostgreSQL")
        }

        @Test("Redis down: requests are saved and acknowledged, and enqueued once it returns")
        func redisOutage() async throws {
            try await outage(redisDatabase: 2, stop: env.stopDisruptRedis, start: env.startDisruptRedis, what: "Redis")
        }

        @Test("started while PostgreSQL is down: accepts from its sites snapshot, stores everything once it is back")
        func startWhilePostgresDown() async throws {
            let collector = CollectorProcess(env: env, redisDatabase: 4, disrupt: true)
            try await collector.start()
            let site = try await collector.addSite()
            await collector.stop()
            try await env.stopDisruptPostgres()
            var accepted: [Int64] = []
            do {
                try await collector.start()
                for n in 0..<5 {
                    let response = try await collector.send("/v1/track", key: site.key, json: #"{"event":"e\#(n)","userId":"u"}"#)
                    #expect(response.status == 200)
                    if let id = response.batchID { accepted.append(id) }
                }
            } catch {
                try await env.startDisruptPostgres()
                throw error
            }
            try await env.startDisruptPostgres()
            defer { Task { await collector.stop() } }
            let stored = await eventually(timeout: .seconds(30)) {
                let saved = (try? await collector.rawBatches(site: site.id)) ?? [:]
                let queued = (try? await collector.queuedBatchIDs(site: site.id)) ?? []
                return Set(accepted).isSubset(of: Set(saved.keys)) && Set(accepted).isSubset(of: Set(queued))
            }
            #expect(accepted.count == 5)
            #expect(stored)
        }

        @Test("both down: 503 with Retry-After, never a 2xx for anything not durable")
        func bothDown() async throws {
            let collector = CollectorProcess(env: env, redisDatabase: 3, disrupt: true)
            try await collector.start()
            defer { Task { await collector.stop() } }
            let site = try await collector.addSite()
            try await env.stopDisruptRedis()
            try await env.stopDisruptPostgres()
            defer { Task { try? await env.startDisruptRedis(); try? await env.startDisruptPostgres() } }
            try await Task.sleep(for: .seconds(2))
            let response = try await collector.send("/v1/track", key: site.key, json: #"{"event":"e","userId":"u"}"#)
            #expect(response.status == 503)
            #expect(response.header("retry-after") != nil)
            try await env.startDisruptRedis()
            try await env.startDisruptPostgres()
        }
    }
}

enum SpoolFolder {
    /// Whether a collector's spool folder holds no segment with data.
    static func isEmpty(_ directory: String) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("segment-") }.allSatisfy { name in
            let size = (try? FileManager.default.attributesOfItem(atPath: directory + "/" + name))?[.size] as? NSNumber
            return (size?.intValue ?? 0) == 0
        }
    }
}
