import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TributaryModels
import TributaryRedis

/// Writes this instance's ``Heartbeat`` to Redis every interval, until shutdown.
///
/// Keys (read by the health-checker, documented in docs/queues.md):
/// - `tributary:heartbeat:<service>:<instance>`: the heartbeat JSON, expiring after the TTL;
/// - `tributary:instances`: sorted set of `<service>:<instance>` scored by the last beat (Unix ms).
///
/// A failed write is logged and retried at the next beat; it never stops the daemon.
public struct HeartbeatService: Service, CustomStringConvertible {
    public static let instancesKey = "tributary:instances"
    public static func key(service: String, instance: String) -> String {
        "tributary:heartbeat:\(service):\(instance)"
    }

    let identity: InstanceIdentity
    let redis: RedisConnection
    let intervalSeconds: Double
    let ttlSeconds: Int
    let isPaused: @Sendable () -> Bool
    let jobs: JobReporter?
    let logger: Logger
    let beats: Counter
    let failures: Counter

    public init(identity: InstanceIdentity, redis: RedisConnection, intervalSeconds: Double, ttlSeconds: Int,
                logger: Logger, jobs: JobReporter? = nil, isPaused: @escaping @Sendable () -> Bool = { false }) {
        self.identity = identity
        self.redis = redis
        self.intervalSeconds = intervalSeconds
        self.ttlSeconds = ttlSeconds
        self.isPaused = isPaused
        self.jobs = jobs
        self.logger = logger
        self.beats = Counter(label: "tributary_heartbeats_total", dimensions: [("service", identity.service)])
        self.failures = Counter(label: "tributary_heartbeat_failures_total", dimensions: [("service", identity.service)])
    }

    public var description: String { "HeartbeatService" }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await beat()
            try? await gracefulSleep(for: .milliseconds(Int(intervalSeconds * 1000)))
        }
        // Leave the registry cleanly so the health-checker does not page for a planned stop.
        _ = try? await redis.pipeline([
            ["DEL", Self.key(service: identity.service, instance: identity.instance)],
            ["ZREM", Self.instancesKey, "\(identity.service):\(identity.instance)"],
        ])
    }

    /// Writes one heartbeat now, with the job results that changed since the last one.
    public func beat() async {
        let now = Date()
        let heartbeat = Heartbeat(service: identity.service, instance: identity.instance, host: identity.host,
                                  pid: identity.pid, version: identity.version, startedAt: identity.startedAt,
                                  sentAt: now, adminURL: identity.adminURL, isPaused: isPaused())
        let results = jobs?.takeChanged() ?? []
        do {
            let json = try TributaryJSON.encode(heartbeat)
            var commands: [[any RedisArgumentConvertible]] = [
                ["SET", Self.key(service: identity.service, instance: identity.instance), json, "EX", ttlSeconds],
                ["ZADD", Self.instancesKey, Int64(now.timeIntervalSince1970 * 1000),
                 "\(identity.service):\(identity.instance)"],
            ]
            if !results.isEmpty {
                var hset: [any RedisArgumentConvertible] = ["HSET", JobResult.redisKey]
                for result in results {
                    hset.append(result.field)
                    hset.append(try TributaryJSON.encode(result))
                }
                commands.append(hset)
            }
            _ = try await redis.pipeline(commands)
            beats.increment()
        } catch {
            jobs?.restore(results)
            failures.increment()
            logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
        }
    }
}

/// Who this process is: service name, unique instance id, host, pid, version, start time.
public struct InstanceIdentity: Sendable {
    public var service: String
    public var instance: String
    public var host: String
    public var pid: Int32
    public var version: String
    public var startedAt: Date
    public var adminURL: String?

    public init(service: String, adminURL: String? = nil) {
        self.service = service
        self.host = ProcessInfo.processInfo.hostName
        self.pid = ProcessInfo.processInfo.processIdentifier
        self.instance = QueueConsumer.makeID()
        self.version = TributaryVersion.current
        self.startedAt = Date()
        self.adminURL = adminURL
    }
}

/// The version of this build.
public enum TributaryVersion {
    public static let current = "0.1.0"
}
