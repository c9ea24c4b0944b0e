import Configuration
import Logging
import NIOPosix
import TributaryPostgres
import TributaryRedis

/// The infrastructure one daemon process shares between its services: configuration,
/// logger, the thread pool for blocking C calls, the Redis command connection and the
/// PostgreSQL pool (connected as the daemon's own role).
///
/// Made once in `main` (``make(daemon:reader:extraThreads:)``) and shut down last.
public final class DaemonContext: Sendable {
    public let daemon: DaemonName
    public let configuration: RuntimeConfiguration
    public let reader: ConfigReader
    public let logger: Logger
    public let identity: InstanceIdentity
    /// Runs every blocking hiredis/libpq/libcurl call; sized to the connections that use it.
    public let threadPool: NIOThreadPool
    /// For non-blocking Redis commands (pushes, scripts, heartbeats).
    public let redis: RedisConnection
    public let postgres: PostgresClient
    /// This process's job results, written to Redis with each heartbeat.
    public let jobs: JobReporter
    /// The maintenance switch (read by the daemons whose workers pause for it).
    public let maintenance: MaintenanceSwitch

    /// - Parameter extraThreads: Threads beyond the PostgreSQL pool and the Redis command
    ///   connection: one per blocking Redis connection or concurrent HTTP transfer.
    public static func make(daemon: DaemonName, reader: ConfigReader, extraThreads: Int = 2) throws -> DaemonContext {
        let configuration = try RuntimeConfiguration(daemon: daemon, reader: reader)
        // Metrics must be bootstrapped before any service creates its metric objects.
        _ = MetricsBootstrap.registry
        let logger = LoggingBootstrap.bootstrap(service: daemon.rawValue, level: configuration.logLevel,
                                                format: configuration.logFormat)
        return DaemonContext(daemon: daemon, configuration: configuration, reader: reader, logger: logger,
                             extraThreads: extraThreads)
    }

    init(daemon: DaemonName, configuration: RuntimeConfiguration, reader: ConfigReader, logger: Logger, extraThreads: Int) {
        self.daemon = daemon
        self.configuration = configuration
        self.reader = reader
        var logger = logger
        let identity = InstanceIdentity(
            service: daemon.rawValue,
            adminURL: "http://\(configuration.adminHost):\(configuration.adminPort)")
        logger[metadataKey: "instance"] = .string(identity.instance)
        self.logger = logger
        self.identity = identity
        jobs = JobReporter(service: daemon.rawValue, instance: identity.instance)
        threadPool = NIOThreadPool(numberOfThreads: configuration.postgresPoolSize + 1 + max(extraThreads, 0))
        threadPool.start()
        redis = RedisConnection(configuration: configuration.redis, threadPool: threadPool)
        postgres = PostgresClient(configuration: configuration.postgres,
                                  maximumConnections: configuration.postgresPoolSize, threadPool: threadPool)
        maintenance = MaintenanceSwitch(redis: redis, pollSeconds: configuration.maintenancePollSeconds, logger: logger)
    }

    /// Whether this daemon's workers should take nothing new now (maintenance mode is on
    /// and the daemon is one that pauses for it).
    public var isPaused: Bool { daemon.pausesForMaintenance && maintenance.isOn }

    /// A new connection for blocking waits (its socket timeout exceeds the idle wait).
    public func makeBlockingRedis() -> RedisConnection {
        RedisConnection(configuration: configuration.redis, threadPool: threadPool)
    }

    /// A queue consumer for `queue`, with its own blocking connection; each take gathers
    /// the turns of up to `maxSitesPerTake` sites (for a handler that can apply several
    /// sites' items together), each of up to `maxItemsPerTurn` items (by default
    /// `queue.maxItemsPerTurn`).
    public func makeConsumer(queue name: String, maxSitesPerTake: Int = 1, maxItemsPerTurn: Int? = nil) -> QueueConsumer {
        var queueConfiguration = configuration.queue
        queueConfiguration.maxSitesPerTake = maxSitesPerTake
        if let maxItemsPerTurn { queueConfiguration.maxItemsPerTurn = maxItemsPerTurn }
        return QueueConsumer(queue: ReliableQueue(name: name, connection: redis),
                             consumerID: QueueConsumer.makeID(prefix: daemon.rawValue),
                             blockingConnection: makeBlockingRedis(), configuration: queueConfiguration)
    }

    /// Closes the connections and stops the thread pool.
    public func shutdown() async {
        postgres.close()
        redis.close()
        try? await threadPool.shutdownGracefully()
    }
}
