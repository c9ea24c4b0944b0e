import TributaryHTTP
import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// What the forwarder's commands connect to: PostgreSQL as the forwarder's role, and Redis.
struct ForwarderCLI {
    let postgres: PostgresClient
    let redis: RedisConnection

    /// Runs `body` connected as the forwarder; a connection failure or a missing schema
    /// becomes a one-line reason.
    static func with(_ options: CommonOptions, _ body: (ForwarderCLI) async throws -> Void) async throws {
        let reader = try await ConfigLoader.load(path: options.config)
        let configuration = try RuntimeConfiguration(daemon: .forwarder, reader: reader)
        let pool = NIOThreadPoolBox(threads: 2)
        defer { pool.stop() }
        let client = PostgresClient(configuration: configuration.postgres, maximumConnections: 1, threadPool: pool.pool)
        defer { client.close() }
        let redis = RedisConnection(configuration: configuration.redis, threadPool: pool.pool)
        defer { redis.close() }
        do {
            try await body(ForwarderCLI(postgres: client, redis: redis))
        } catch let error as PostgresError where error.code == .connectionFailed {
            throw DaemonError("cannot connect to PostgreSQL at \(configuration.postgres.host):\(configuration.postgres.port) as \(configuration.postgres.user)")
        } catch let error as PostgresError where error.sqlState == "42P01" || error.sqlState == "42703" {
            throw DaemonError("the forwarder schema is not migrated; run: forwarder migrate")
        } catch let error as RedisError {
            throw DaemonError("Redis at \(configuration.redis.host):\(configuration.redis.port): \(error)")
        }
    }

    func requireSink(_ reference: String) async throws -> Sink {
        guard let sink = try await SinkStore(postgres: postgres).find(reference) else { throw DaemonError("no sink \(reference)") }
        return sink
    }
}


extension Sink {
    /// The sink as the commands print it (never the secret itself).
    var summary: [String: Any] {
        var o: [String: Any] = [
            "sinkId": id, "name": name, "type": type.rawValue, "url": OutboundGuard.redacted(url), "sites": sites,
            "eventTypes": eventTypes, "eventNames": eventNames, "allowPrivateNetwork": allowPrivateNetwork,
            "enabled": enabled, "queue": "forward:\(id)",
        ]
        if let secretFile { o["secretFile"] = secretFile }
        let l = limits
        o["limits"] = ["batchSize": l.batchSize, "maxBytes": l.maxBytes, "maxWaitMs": l.maxWaitMs,
                       "concurrency": l.concurrency, "timeoutMs": l.timeoutMs]
        if type == .statsd { o["eventCounters"] = settings.eventCounters ?? false }
        if let createdAt { o["createdAt"] = ISO8601Format.string(createdAt) }
        return o
    }
}

enum ISO8601Format {
    static func string(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}
