import Logging
import ServiceLifecycle
import Synchronization
import TributaryRedis

/// The maintenance switch as this process sees it: the Redis key `tributary:maintenance`
/// (set by `health-checker maintenance on`, removed by `off`), read every
/// `maintenance.pollSeconds`.
///
/// While it is on, the queue workers of hydration, the aggregator and the forwarder finish
/// the items they hold and take nothing new (their heartbeats say `isPaused`); the
/// collector keeps accepting, so the queues grow. When it is off again, they drain. While
/// Redis cannot be read, the last known state holds (the queues are unreachable anyway).
public final class MaintenanceSwitch: Service, CustomStringConvertible, Sendable {
    /// The Redis key that holds the switch (its value says who turned it on, when and why).
    public static let key = "tributary:maintenance"

    private let redis: RedisConnection
    private let interval: Duration
    private let logger: Logger
    private let on = Atomic<Bool>(false)

    public var description: String { "MaintenanceSwitch" }

    /// - Parameter pollSeconds: How often the key is read.
    public init(redis: RedisConnection, pollSeconds: Double, logger: Logger) {
        self.redis = redis
        interval = .milliseconds(max(Int(pollSeconds * 1000), 1))
        self.logger = logger
    }

    /// Whether maintenance mode was on at the last read.
    public var isOn: Bool { on.load(ordering: .acquiring) }

    /// Reads the switch now; returns whether it is on.
    @discardableResult
    public func refresh() async throws -> Bool {
        let exists = (try await redis.send("EXISTS", Self.key).integer ?? 0) > 0
        let was = on.exchange(exists, ordering: .acquiringAndReleasing)
        if was != exists {
            logger.notice(exists ? "maintenance mode is on: finishing the items in hand, then pausing"
                                 : "maintenance mode is off: resuming")
        }
        return exists
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await refresh() } catch {
                logger.warning("could not read the maintenance switch; keeping its last state",
                               metadata: ["error": "\(error)", "maintenance": "\(isOn)"])
            }
            try? await gracefulSleep(for: interval)
        }
    }
}
