import Configuration
import TributaryPostgres
import TributaryRedis

/// The settings every daemon shares, read from the one config file.
///
/// ## Configuration keys
/// - `redis.url` (string, default `redis://127.0.0.1:6379`): `redis://[:password@]host[:port][/db]` or `unix:///path`.
/// - `redis.passwordFile` (string, optional, secret file): overrides a password in the URL.
/// - `redis.clusterNodes` (string array, default empty): seed nodes (`host:port`) of a Redis Cluster; when set,
///   `redis.url` gives only the password (the cluster has one database, 0).
/// - `redis.connectTimeoutMs` (int, default 2000, 1…60000).
/// - `redis.socketTimeoutMs` (int, default 5000, 100…600000): must exceed `queue.idleWaitSeconds`.
/// - `postgres.host` (string, default `127.0.0.1`): host, address or socket directory.
/// - `postgres.port` (int, default 5432).
/// - `postgres.database` (string, default `tributary`).
/// - `postgres.statementTimeoutMs` (int, default 60000, 0…3600000).
/// - `postgres.preparedStatements` (int, default 256, 0…10000): statements each connection keeps prepared
///   (a statement is prepared when it runs a second time); 0 turns preparing off (for a pooler in
///   transaction mode, which cannot keep them).
/// - `<daemon>.postgres.user` (string, default `tributary_<schema>`): the daemon's own role.
/// - `<daemon>.postgres.passwordFile` (string, optional, secret file).
/// - `<daemon>.postgres.poolSize` (int, default 4, hydration 6, 1…64): connections per process.
/// - `<daemon>.admin.host` (string, default `127.0.0.1`), `<daemon>.admin.port` (int, default 9101…9105).
/// - `heartbeat.intervalSeconds` (double, default 5, 0.1…300); `heartbeat.ttlSeconds` (int, default 30, 1…3600).
/// - `queue.maxItemsPerTurn` (int, default 10, 1…1000): round-robin quantum per site.
/// - `queue.leaseSeconds` (double, default 15, 1…3600): a silent consumer's items are recovered after this.
/// - `queue.idleWaitSeconds` (double, default 1, 0.05…30): how long an idle worker blocks.
/// - `queue.recoverIntervalSeconds` (double, default 5, 0.1…3600): how often workers look for orphans.
/// - `maintenance.pollSeconds` (double, default 2, 0.1…60): how often hydration, the aggregator and
///   the forwarder read the maintenance switch (`health-checker maintenance on|off`).
/// - `shutdown.gracePeriodSeconds` (double, default 25, 1…600): below systemd's `TimeoutStopSec`.
/// - `log.level` (string, default `info`): trace, debug, info, notice, warning, error, critical.
/// - `log.format` (string, default `json`): `json` or `text`.
///
/// `<daemon>` is `collector`, `hydration`, `aggregator`, `forwarder` or `healthChecker`.
public struct RuntimeConfiguration: Sendable {
    public var daemon: DaemonName
    public var redis: RedisConfiguration
    public var postgres: PostgresConfiguration
    public var postgresPoolSize: Int
    public var adminHost: String
    public var adminPort: Int
    public var heartbeatIntervalSeconds: Double
    public var heartbeatTTLSeconds: Int
    public var queue: QueueConsumer.Configuration
    public var recoverIntervalSeconds: Double
    public var maintenancePollSeconds: Double
    public var gracePeriodSeconds: Double
    public var logLevel: String
    public var logFormat: String

    /// Reads the shared keys for `daemon`; throws ``ConfigurationError`` naming the bad key.
    public init(daemon: DaemonName, reader: ConfigReader) throws {
        self.daemon = daemon
        let redisURL = reader.string(forKey: "redis.url", default: "redis://127.0.0.1:6379")
        guard var redis = RedisConfiguration(url: redisURL) else {
            throw ConfigurationError("redis.url must look like redis://host:port/db or unix:///path")
        }
        if let password = try reader.secret(fileKey: "redis.passwordFile") { redis.password = password }
        redis.clusterNodes = reader.stringArray(forKey: "redis.clusterNodes", default: [])
        for node in redis.clusterNodes {
            let parts = node.split(separator: ":")
            guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
                throw ConfigurationError("redis.clusterNodes: \(node) is not host:port")
            }
        }
        if !redis.clusterNodes.isEmpty && redis.database != 0 {
            throw ConfigurationError("redis.clusterNodes: a Redis Cluster has only database 0, but redis.url selects \(redis.database)")
        }
        redis.connectTimeoutMs = try reader.int(forKey: "redis.connectTimeoutMs", default: 2_000, in: 1...60_000)
        redis.socketTimeoutMs = try reader.int(forKey: "redis.socketTimeoutMs", default: 5_000, in: 100...600_000)
        self.redis = redis

        let own = daemon.configSection
        postgres = PostgresConfiguration(
            host: reader.string(forKey: "postgres.host", default: "127.0.0.1"),
            port: try reader.int(forKey: "postgres.port", default: 5432, in: 1...65535),
            database: reader.string(forKey: "postgres.database", default: "tributary"),
            user: reader.string(forKey: ConfigKey("\(own).postgres.user"), default: daemon.defaultRole),
            password: try reader.secret(fileKey: ConfigKey("\(own).postgres.passwordFile")),
            applicationName: "tributary-\(daemon.rawValue)",
            statementTimeoutMs: try reader.int(forKey: "postgres.statementTimeoutMs", default: 60_000, in: 0...3_600_000),
            preparedStatements: try reader.int(forKey: "postgres.preparedStatements", default: 256, in: 0...10_000))
        postgresPoolSize = try reader.int(forKey: ConfigKey("\(own).postgres.poolSize"), default: daemon.defaultPoolSize, in: 1...64)
        adminHost = reader.string(forKey: ConfigKey("\(own).admin.host"), default: "127.0.0.1")
        adminPort = try reader.int(forKey: ConfigKey("\(own).admin.port"), default: daemon.defaultAdminPort, in: 0...65535)
        heartbeatIntervalSeconds = try reader.double(forKey: "heartbeat.intervalSeconds", default: 5, in: 0.1...300)
        heartbeatTTLSeconds = try reader.int(forKey: "heartbeat.ttlSeconds", default: 30, in: 1...3600)
        queue = QueueConsumer.Configuration(
            maxItemsPerTurn: try reader.int(forKey: "queue.maxItemsPerTurn", default: 10, in: 1...1000),
            leaseMs: Int(try reader.double(forKey: "queue.leaseSeconds", default: 15, in: 1...3600) * 1000),
            idleWaitSeconds: try reader.double(forKey: "queue.idleWaitSeconds", default: 1, in: 0.05...30))
        recoverIntervalSeconds = try reader.double(forKey: "queue.recoverIntervalSeconds", default: 5, in: 0.1...3600)
        guard Double(redis.socketTimeoutMs) > queue.idleWaitSeconds * 1000 + 500 else {
            throw ConfigurationError("redis.socketTimeoutMs must exceed queue.idleWaitSeconds by at least 500 ms")
        }
        maintenancePollSeconds = try reader.double(forKey: "maintenance.pollSeconds", default: 2, in: 0.1...60)
        gracePeriodSeconds = try reader.double(forKey: "shutdown.gracePeriodSeconds", default: 25, in: 1...600)
        logLevel = reader.string(forKey: "log.level", default: "info")
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ConfigurationError("log.level must be one of trace, debug, info, notice, warning, error, critical")
        }
        logFormat = reader.string(forKey: "log.format", default: "json")
        guard ["json", "text"].contains(logFormat) else {
            throw ConfigurationError("log.format must be json or text")
        }
    }
}
