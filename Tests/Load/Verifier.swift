import Foundation
import TributaryHTTP
import TributaryModels
import TributaryPostgres

/// Checks every stage against a run's record: raw batches, hydration (stored, rejected
/// or deduplicated, exactly once), the aggregates (recomputed from the record alone) and
/// one sink's deliveries (from the counting server).
struct Verifier {
    struct Stage: Sendable {
        var name: String
        var expected = 0
        var ok = 0
        var lost = 0
        var duplicated = 0
        var miscounted = 0
        var notes: [String] = []
        /// What the stage has done so far (rises while it catches up, even before rows tie).
        var progress = 0
        var isClean: Bool { lost == 0 && duplicated == 0 && miscounted == 0 }
    }

    let record: RecordFile
    let db: PostgresClient
    let http: HTTPClient?
    let sinkIDsURL: String?
    let sinkID: Int64?
    let sessionTimeout: Double = 1800
    /// The pipeline times an event by its receipt (timestamp = receivedAt − (sentAt − timestamp)),
    /// which the record does not know: a gap this close to the timeout may fall either side.
    let clockTolerance: Double = 5

    var sites: String { "{" + record.header.sites.map(String.init).joined(separator: ",") + "}" }

    func verify() async throws -> [Stage] {
        let acked = record.batches.filter(\.acked)
        let raw = try await rawStage(acked)
        let (hydration, storedIDs) = try await hydrationStage(acked)
        let aggregates = try await aggregateStage(storedIDs)
        var stages = [raw, hydration, aggregates]
        if let sinkIDsURL, let http { stages.append(try await sinkStage(storedIDs, url: sinkIDsURL, http: http)) }
        return stages
    }

    func rawStage(_ acked: [RecordedBatch]) async throws -> Stage {
        var stage = Stage(name: "raw batches")
        let rows = try await db.query("SELECT site_id, batch_id, event_count FROM collector.raw_batches WHERE site_id = ANY($1::bigint[])",
                                      [sites]).rows
        var found: [String: Int64] = [:]
        for row in rows { found["\(try row.int("site_id") ?? 0):\(try row.int("batch_id") ?? 0)"] = try row.int("event_count") }
        for batch in acked {
            stage.expected += 1
            guard let id = batch.batch, let count = found["\(batch.site):\(id)"] else {
                stage.lost += 1
                if stage.notes.count < 5 { stage.notes.append("batch \(batch.batch ?? "?") of site \(batch.site) is not stored") }
                continue
            }
            if count == Int64(batch.events.count) { stage.ok += 1 } else {
                stage.miscounted += 1
                if stage.notes.count < 5 { stage.notes.append("batch \(id): \(batch.events.count) events sent, \(count) stored") }
            }
        }
        return stage
    }

    /// Returns the stage and the events hydration stored once (acknowledged, or not
    /// acknowledged but stored all the same), by messageId.
    func hydrationStage(_ acked: [RecordedBatch]) async throws -> (Stage, [String: (site: Int64, event: RecordedEvent)]) {
        var stage = Stage(name: "hydration")
        let rows = try await db.query("""
            SELECT site_id, message_id, count(*) AS n FROM hydration.events
            WHERE site_id = ANY($1::bigint[]) AND name IS DISTINCT FROM 'tributary_canary' GROUP BY site_id, message_id
            """, [sites]).rows
        var stored: [String: Int64] = [:]
        for row in rows { stored[try row.string("message_id") ?? ""] = try row.int("n") ?? 0 }
        let failedRows = try await db.query("""
            SELECT site_id, batch_id, position FROM hydration.failed_events WHERE site_id = ANY($1::bigint[])
            """, [sites]).rows
        var failed: Set<String> = []
        for row in failedRows {
            failed.insert("\(try row.int("site_id") ?? 0):\(try row.int("batch_id") ?? 0):\(try row.int("position") ?? 0)")
        }
        var kept: [String: (site: Int64, event: RecordedEvent)] = [:]
        var accounted: Set<String> = []
        for batch in acked {
            for e in batch.events {
                switch e.x {
                case .stored:
                    stage.expected += 1
                    accounted.insert(e.m)
                    let n = stored[e.m] ?? 0
                    if n == 1 { stage.ok += 1; kept[e.m] = (batch.site, e) }
                    else if n == 0 {
                        stage.lost += 1
                        if stage.notes.count < 5 { stage.notes.append("event \(e.m) of site \(batch.site) is not stored") }
                    } else {
                        stage.duplicated += 1
                        kept[e.m] = (batch.site, e)
                        if stage.notes.count < 5 { stage.notes.append("event \(e.m) is stored \(n) times") }
                    }
                case .invalid:
                    stage.expected += 1
                    if failed.contains("\(batch.site):\(batch.batch ?? ""):\(e.pos)") { stage.ok += 1 } else {
                        stage.lost += 1
                        if stage.notes.count < 5 { stage.notes.append("invalid event \(e.m) has no failure recorded") }
                    }
                case .duplicate:
                    // Counted with its original: stored exactly once overall.
                    stage.expected += 1
                    stage.ok += (stored[e.m] ?? 0) >= 1 ? 1 : 0
                    if (stored[e.m] ?? 0) == 0 { stage.lost += 1 }
                }
            }
        }
        // Batches never acknowledged may have been stored all the same (the answer was lost): they count where stored.
        for batch in record.batches where !batch.acked {
            for e in batch.events where e.x == .stored && (stored[e.m] ?? 0) >= 1 && !accounted.contains(e.m) {
                kept[e.m] = (batch.site, e)
                accounted.insert(e.m)
            }
        }
        let recordedIDs = Set(record.batches.flatMap { $0.events.map(\.m) })
        let unexpected = stored.keys.filter { !recordedIDs.contains($0) }
        if !unexpected.isEmpty {
            stage.duplicated += unexpected.count
            stage.notes.append("\(unexpected.count) stored event(s) the generator never sent, e.g. \(unexpected.first!)")
        }
        return (stage, kept)
    }

    /// The statistics recomputed from the record: per site and UTC day, page views,
    /// events, unique visitors and visits (30 minutes of inactivity), and page views per
    /// page and events per name; compared with the aggregator's rows.
    func aggregateStage(_ kept: [String: (site: Int64, event: RecordedEvent)]) async throws -> Stage {
        var stage = Stage(name: "aggregates")
        struct Key: Hashable { var site: Int64; var day: String; var dim: String; var value: String }
        var expected: [Key: [String: Int64]] = [:]
        // Visits whose split is ambiguous (a gap within clockTolerance of the timeout): the
        // count may be up to this many higher than `expected["visits"]`.
        var ambiguousVisits: [Key: Int64] = [:]
        var visitorTimes: [Key: [Int: [Int64]]] = [:]
        for (site, e) in kept.values where e.t == "page" || e.t == "track" {
            let day = String(ISO8601.format(Date(timeIntervalSince1970: Double(e.at) / 1000)).prefix(10))
            let total = Key(site: site, day: day, dim: "", value: "")
            expected[total, default: [:]]["events", default: 0] += 1
            if e.t == "page" { expected[total, default: [:]]["pageviews", default: 0] += 1 }
            visitorTimes[total, default: [:]][e.v, default: []].append(e.at)
            if e.t == "page", let path = e.p {
                expected[Key(site: site, day: day, dim: "page", value: path), default: [:]]["pageviews", default: 0] += 1
            }
            if e.t == "track", let name = e.p {
                expected[Key(site: site, day: day, dim: "name", value: name), default: [:]]["events", default: 0] += 1
            }
        }
        for (key, visitors) in visitorTimes {
            expected[key, default: [:]]["visitors"] = Int64(visitors.count)
            var visits: Int64 = 0
            for times in visitors.values {
                var last: Int64?
                for t in times.sorted() {
                    let gap = last.map { Double(t - $0) / 1000 }
                    if let gap, abs(gap - sessionTimeout) <= clockTolerance {
                        ambiguousVisits[key, default: 0] += 1
                    } else if gap.map({ $0 > sessionTimeout }) ?? true {
                        visits += 1
                    }
                    last = t
                }
            }
            expected[key, default: [:]]["visits"] = visits
        }
        let rows = try await db.query("""
            SELECT site_id, day::text AS day, dim, value, visitors, visits, pageviews, events FROM aggregator.daily
            WHERE site_id = ANY($1::bigint[]) AND (dim = '' OR dim = 'page' OR dim = 'name')
            """, [sites]).rows
        var actual: [Key: [String: Int64]] = [:]
        for row in rows {
            let key = Key(site: try row.int("site_id") ?? 0, day: try row.string("day") ?? "", dim: try row.string("dim") ?? "",
                          value: try row.string("value") ?? "")
            if key.dim.isEmpty { stage.progress += Int(try row.int("events") ?? 0) }
            actual[key] = ["visitors": try row.int("visitors") ?? 0, "visits": try row.int("visits") ?? 0,
                           "pageviews": try row.int("pageviews") ?? 0, "events": try row.int("events") ?? 0]
        }
        for (key, metrics) in expected {
            stage.expected += 1
            guard let got = actual[key] else {
                stage.lost += 1
                if stage.notes.count < 5 { stage.notes.append("no row for site \(key.site), \(key.day), \(key.dim)=\(key.value)") }
                continue
            }
            let slack = ambiguousVisits[key] ?? 0
            let wrong = metrics.filter { metric, value in
                guard metric == "visits", slack > 0 else { return got[metric] != value }
                return !(value...(value + slack)).contains(got[metric] ?? -1)
            }
            if wrong.isEmpty { stage.ok += 1 } else {
                let over = wrong.contains { (got[$0.key] ?? 0) > $0.value }
                if over { stage.duplicated += 1 } else { stage.miscounted += 1 }
                if stage.notes.count < 5 {
                    stage.notes.append("site \(key.site) \(key.day) \(key.dim.isEmpty ? "totals" : "\(key.dim)=\(key.value)"): "
                                       + wrong.map { "\($0.key) \(got[$0.key] ?? 0), expected \($0.value)" }.sorted().joined(separator: ", "))
                }
            }
        }
        return stage
    }

    /// Every stored event a webhook sink takes (all but metrics) is delivered, or
    /// dead-lettered with a reason. An event may arrive in a second request after a crash
    /// between the request and its settlement (at-least-once to sinks); it then carries
    /// the same messageId, the receiver's idempotency key: counted as redelivered, not as
    /// a duplicate. (Hydration already proved each messageId is one stored event.)
    func sinkStage(_ kept: [String: (site: Int64, event: RecordedEvent)], url: String, http: HTTPClient) async throws -> Stage {
        var stage = Stage(name: "delivered")
        let response = try await http.send(HTTPClientRequest(url: url, timeoutMs: 120_000, maximumResponseBytes: 1 << 30))
        guard response.status == 200, let pairs = try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String]] else {
            throw LoadError("the counting server at \(url) answered \(response.status)")
        }
        var deliveries: [String: Set<String>] = [:]
        for pair in pairs where pair.count == 2 { deliveries[pair[1], default: []].insert(pair[0]) }
        var dead: Set<String> = []
        var redelivered = 0
        if let sinkID {
            let rows = try await db.query("""
                SELECT message_id FROM forwarder.dead_letters WHERE sink_id = $1 AND site_id = ANY($2::bigint[])
                """, [sinkID, sites]).rows
            dead = Set(try rows.compactMap { try $0.string("message_id") })
        }
        for (id, entry) in kept where entry.event.t != "metric" {
            stage.expected += 1
            let n = deliveries[id]?.count ?? 0
            if n == 1 { stage.ok += 1 }
            else if n == 0 && dead.contains(id) {
                stage.ok += 1
                if stage.notes.count < 5 { stage.notes.append("\(id) dead-lettered") }
            }
            else if n == 0 {
                stage.lost += 1
                if stage.notes.count < 5 { stage.notes.append("event \(id) of site \(entry.site) was not delivered") }
            } else {
                stage.ok += 1
                redelivered += 1
            }
        }
        if redelivered > 0 {
            stage.notes.append("\(redelivered) event(s) arrived in a second request (same messageId: the receiver's idempotency key)")
        }
        let unknown = deliveries.keys.filter { kept[$0] == nil && !$0.hasPrefix("canary-") }
        let sent = Set(record.batches.flatMap { $0.events.map(\.m) })
        let strangers = unknown.filter { !sent.contains($0) }
        if !strangers.isEmpty {
            stage.duplicated += strangers.count
            stage.notes.append("\(strangers.count) delivered event(s) the generator never sent, e.g. \(strangers.first!)")
        }
        return stage
    }
}
