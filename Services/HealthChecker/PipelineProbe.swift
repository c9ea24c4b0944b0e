import Foundation
import Logging
import Synchronization
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// Reads the pipeline's state for the checks: PostgreSQL (every schema, read-only) and
/// Redis (heartbeats, job results, queues). Holds what incremental checks carry from one
/// round to the next (the ties' watermark).
final class PipelineProbe: Sendable {
    let postgres: PostgresClient
    let redis: RedisConnection
    let configuration: HealthCheckerConfiguration
    let logger: Logger
    let ties: TieTracker
    /// True in the daemon (rounds follow each other); false for `check --once`.
    let watchesAcrossRounds: Bool
    private let sinksSeen = Mutex<[(id: Int64, name: String)]>([])
    /// Check groups that could not run, and when (so they pass again under their name).
    private let failedGroups = Mutex<[String: Date]>([:])

    init(postgres: PostgresClient, redis: RedisConnection, configuration: HealthCheckerConfiguration, logger: Logger,
         watchesAcrossRounds: Bool = false) {
        self.watchesAcrossRounds = watchesAcrossRounds
        self.postgres = postgres
        self.redis = redis
        self.configuration = configuration
        self.logger = logger
        ties = TieTracker(configuration: configuration)
    }

    /// A live or recently seen daemon instance.
    struct Instance: Sendable {
        var service: String
        var instance: String
        var lastBeat: Date
        var heartbeat: Heartbeat?
        var isLive: Bool { heartbeat != nil }
    }

    /// What the Redis side of a round read once, shared by the checks.
    struct RedisState: Sendable {
        var instances: [Instance]
        var jobs: [JobResult]
        var maintenance: Maintenance.State?

        func live(_ service: String) -> [Instance] { instances.filter { $0.service == service && $0.isLive } }

        /// The latest completion of `job` by any instance of `service`.
        func lastCompletion(_ service: String, _ job: String) -> Date? {
            jobs.filter { $0.service == service && $0.job == job }.map(\.lastAt).max()
        }
    }

    func readRedis() async throws -> RedisState {
        let members = try await redis.send("ZRANGE", HeartbeatService.instancesKey, 0, -1, "WITHSCORES").array ?? []
        var pairs: [(String, String, Date)] = []
        var index = 0
        while index + 1 < members.count {
            let member = members[index].string ?? ""
            let score = Double(members[index + 1].string ?? "") ?? 0
            if let colon = member.firstIndex(of: ":") {
                pairs.append((String(member[..<colon]), String(member[member.index(after: colon)...]),
                              Date(timeIntervalSince1970: score / 1000)))
            }
            index += 2
        }
        var instances: [Instance] = []
        if !pairs.isEmpty {
            let replies = try await redis.pipeline(pairs.map { ["GET", HeartbeatService.key(service: $0.0, instance: $0.1)] })
            for (pair, reply) in zip(pairs, replies) {
                let beat = reply.bytes.flatMap { try? TributaryJSON.decode(Heartbeat.self, from: $0) }
                instances.append(Instance(service: pair.0, instance: pair.1, lastBeat: pair.2, heartbeat: beat))
            }
        }
        let fields = try await redis.send("HGETALL", JobResult.redisKey).array ?? []
        var jobs: [JobResult] = []
        index = 0
        while index + 1 < fields.count {
            if let bytes = fields[index + 1].bytes, let result = try? TributaryJSON.decode(JobResult.self, from: bytes) {
                jobs.append(result)
            }
            index += 2
        }
        let maintenance = try await Maintenance(redis: redis).read()
        return RedisState(instances: instances, jobs: jobs, maintenance: maintenance)
    }

    /// Forgets instances that stopped long ago (or were replaced) and their job results,
    /// so the registry does not grow without bound.
    func prune(_ state: RedisState, forget: [Instance], now: Date) async {
        guard !forget.isEmpty else { return }
        var commands: [[any RedisArgumentConvertible]] = []
        for instance in forget {
            commands.append(["ZREM", HeartbeatService.instancesKey, "\(instance.service):\(instance.instance)"])
            for job in state.jobs where job.service == instance.service && job.instance == instance.instance {
                commands.append(["HDEL", JobResult.redisKey, job.field])
            }
        }
        do { _ = try await redis.pipeline(commands) } catch {
            logger.warning("could not prune stopped instances", metadata: ["error": "\(error)"])
        }
    }

    func noteFailed(_ group: String, now: Date) { failedGroups.withLock { $0[group] = now } }

    func recentlyFailed(_ group: String, now: Date) -> Bool {
        failedGroups.withLock { f in
            guard let at = f[group] else { return false }
            if now.timeIntervalSince(at) > 600 { f[group] = nil; return false }
            return true
        }
    }

    /// Whether `postgres` or `redis` answers right now.
    func dependencyAnswers(_ name: String) async -> Bool {
        if name == "redis" { return (try? await redis.send("PING")) != nil }
        return (try? await postgres.query("SELECT 1")) != nil
    }

    /// When each queue was first seen holding work, since it was last seen empty.
    private let busySince = Mutex<[String: Date]>([:])

    /// Records whether `queue` holds work now; returns since when it has, without a break
    /// (as far as this process has watched it).
    func busy(_ queue: String, _ hasWork: Bool, now: Date) -> Date? {
        busySince.withLock { b in
            guard hasWork else { b[queue] = nil; return nil }
            if b[queue] == nil { b[queue] = now }
            return b[queue]
        }
    }

    /// The sinks read last (their queues are still checked while PostgreSQL is down).
    func lastSinks() -> [(id: Int64, name: String)] { sinksSeen.withLock { $0 } }
    func rememberSinks(_ sinks: [(id: Int64, name: String)]) { sinksSeen.withLock { $0 = sinks } }

    /// The sinks' queues (enabled sinks only), from the forwarder's schema.
    func sinkQueues() async throws -> [(id: Int64, name: String)] {
        do {
            return try await postgres.query("SELECT sink_id, name FROM forwarder.sinks WHERE disabled_at IS NULL ORDER BY sink_id").rows.map {
                (try $0.int("sink_id") ?? 0, try $0.string("name") ?? "")
            }
        } catch let error as PostgresError where error.sqlState == "42P01" {
            return []
        }
    }
}
