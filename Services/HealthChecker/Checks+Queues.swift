import Foundation
import TributaryModels
import TributaryRedis

extension PipelineProbe {
    /// One queue and the job of the stage that consumes it.
    struct QueueSpec: Sendable {
        var name: String
        var service: String
        var job: String
        var label: String
    }

    /// What a queue holds now.
    struct QueueState: Sendable {
        var waiting = 0
        var siteDepth: [String: Int] = [:]
        var siteOldest: [String: Date] = [:]
        var inflight = 0
        var oldestInflight: Date?
        /// Consumers whose lease expired more than the grace ago and still hold items.
        var orphaned: [String: Int] = [:]
        var oldest: Date? { ([oldestInflight] + siteOldest.values.map { Optional($0) }).compactMap { $0 }.min() }
    }

    func queueSpecs(sinks: [(id: Int64, name: String)]) -> [QueueSpec] {
        [QueueSpec(name: QueueName.hydrate, service: "hydration", job: "batch", label: "hydration"),
         QueueSpec(name: QueueName.aggregate, service: "aggregator", job: "batch", label: "the aggregator")]
            + sinks.map { QueueSpec(name: QueueName.forward(sinkID: $0.id), service: "forwarder", job: "deliver:\($0.id)",
                                    label: "the forwarder (sink \($0.name))") }
    }

    /// The receipt time in a queue item (raw batches and hydrated events both carry `receivedAt`).
    static func receivedAt(_ item: [UInt8]) -> Date? {
        let marker = Array("\"receivedAt\":\"".utf8)
        guard item.count > marker.count else { return nil }
        var i = 0
        while i + marker.count < item.count {
            if item[i] == marker[0] && Array(item[i..<(i + marker.count)]) == marker {
                let start = i + marker.count
                guard let end = item[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return ISO8601.parse(String(decoding: item[start..<end], as: UTF8.self))
            }
            i += 1
        }
        return nil
    }

    func readQueue(_ name: String, now: Date) async throws -> QueueState {
        let keys = QueueKeys(name: name)
        var state = QueueState()
        state.waiting = Int(try await redis.send("GET", keys.depth).string ?? "0") ?? 0
        let sites = Array((try await redis.send("SMEMBERS", keys.sites).array ?? []).compactMap(\.string)
            .prefix(configuration.backlogMaxSites))
        if !sites.isEmpty {
            let replies = try await redis.pipeline(sites.flatMap { site -> [[any RedisArgumentConvertible]] in
                [["LLEN", keys.site(site)], ["LINDEX", keys.site(site), -1]]
            })
            for (n, site) in sites.enumerated() {
                let depth = Int(replies[2 * n].integer ?? 0)
                guard depth > 0 else { continue }
                state.siteDepth[site] = depth
                if let item = replies[2 * n + 1].bytes, let at = Self.receivedAt(item) { state.siteOldest[site] = at }
            }
        }
        let consumers = try await redis.send("ZRANGE", keys.consumers, 0, -1, "WITHSCORES").array ?? []
        var leases: [(String, Double)] = []
        var i = 0
        while i + 1 < consumers.count {
            leases.append((consumers[i].string ?? "", Double(consumers[i + 1].string ?? "") ?? 0))
            i += 2
        }
        if !leases.isEmpty {
            let replies = try await redis.pipeline(leases.flatMap { lease -> [[any RedisArgumentConvertible]] in
                [["LLEN", keys.inflight(lease.0)], ["LINDEX", keys.inflight(lease.0), -1]]
            })
            for (n, lease) in leases.enumerated() {
                let held = Int(replies[2 * n].integer ?? 0)
                guard held > 0 else { continue }
                state.inflight += held
                if let entry = replies[2 * n + 1].bytes, let at = Self.receivedAt(entry) {
                    state.oldestInflight = min(state.oldestInflight ?? at, at)
                }
                let expiredFor = now.timeIntervalSince1970 - lease.1 / 1000
                if expiredFor > configuration.inflightGraceSeconds { state.orphaned[lease.0] = held }
            }
        }
        return state
    }

    /// Stalled, backlog and orphaned checks for every queue.
    func queueChecks(_ redisState: RedisState, sinks: [(id: Int64, name: String)], now: Date) async throws -> [CheckResult] {
        var results: [CheckResult] = []
        for spec in queueSpecs(sinks: sinks) {
            let q = try await readQueue(spec.name, now: now)
            let oldestAge = q.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0
            let last = redisState.lastCompletion(spec.service, spec.job)
            let idleFor = last.map { now.timeIntervalSince($0) }
            let heartbeat = "heartbeat:\(spec.service)"
            var detail: [String: JSONValue] = [
                "queue": .string(spec.name), "waiting": .int(Int64(q.waiting)), "inflight": .int(Int64(q.inflight)),
                "oldestAgeSeconds": .int(Int64(oldestAge)),
            ]
            if let last { detail["lastCompletedAt"] = .string(ISO8601.format(last)) }
            // Stalled: work has waited in this queue for the stall time (watched across rounds;
            // `check --once` has one look, and goes by the oldest item's age) and the stage
            // completed nothing for as long. Data that arrives old (an upstream stage catching
            // up) is not a stall of this one.
            let since = busy(spec.name, q.waiting + q.inflight > 0, now: now)
            let waitedFor = watchesAcrossRounds ? since.map { now.timeIntervalSince($0) } ?? 0 : oldestAge
            let stalled = q.waiting + q.inflight > 0 && waitedFor > configuration.stallSeconds
                && (idleFor ?? .infinity) > configuration.stallSeconds
            results.append(stalled
                ? .failing("stalled:\(spec.name)", .stalled,
                           "\(spec.label) completed nothing for \(idleFor.map { "\(Int($0)) s" } ?? "ever since it started")"
                           + " while \(q.waiting + q.inflight) item(s) wait in \(spec.name) (oldest \(Int(oldestAge)) s)",
                           detail, cause: heartbeat)
                : .ok("stalled:\(spec.name)", .stalled, "\(spec.label) keeps up with \(spec.name)", detail))
            // Backlog: depth and age, in total and per site.
            var backlog = detail
            let worst = q.siteDepth.sorted { $0.value > $1.value }.prefix(10)
            backlog["sites"] = .array(worst.map { site, depth in
                .object(["site": .string(site), "waiting": .int(Int64(depth)),
                         "oldestAgeSeconds": .int(Int64(q.siteOldest[site].map { max(0, now.timeIntervalSince($0)) } ?? 0))])
            })
            backlog["maxDepth"] = .int(Int64(configuration.backlogMaxDepth))
            backlog["maxAgeSeconds"] = .double(configuration.backlogMaxAgeSeconds)
            if q.waiting > configuration.backlogMaxDepth {
                results.append(.failing("backlog:\(spec.name)", .backlog,
                    "\(q.waiting) items wait in \(spec.name) (limit \(configuration.backlogMaxDepth))", backlog,
                    cause: stalled ? "stalled:\(spec.name)" : heartbeat))
            } else if oldestAge > configuration.backlogMaxAgeSeconds {
                let site = q.siteOldest.min { $0.value < $1.value }?.key
                results.append(.failing("backlog:\(spec.name)", .backlog,
                    "the oldest item in \(spec.name) is \(Int(oldestAge)) s old (limit \(Int(configuration.backlogMaxAgeSeconds)) s)"
                    + (site.map { ", site \($0)" } ?? ""), backlog, cause: stalled ? "stalled:\(spec.name)" : heartbeat))
            } else {
                results.append(.ok("backlog:\(spec.name)", .backlog, "\(q.waiting) waiting in \(spec.name)", backlog))
            }
            // Orphaned: items held by consumers that are gone, and nobody recovered them.
            if q.orphaned.isEmpty {
                results.append(.ok("orphaned:\(spec.name)", .orphaned, "no items held by dead consumers of \(spec.name)"))
            } else {
                let held = q.orphaned.values.reduce(0, +)
                results.append(.failing("orphaned:\(spec.name)", .orphaned,
                    "\(held) item(s) of \(spec.name) are in flight with \(q.orphaned.count) dead consumer(s) and were not recovered",
                    ["queue": .string(spec.name), "consumers": .object(q.orphaned.mapValues { .int(Int64($0)) })],
                    cause: heartbeat))
            }
        }
        return results
    }
}
