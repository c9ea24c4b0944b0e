import Logging
import ServiceLifecycle
import TributaryPostgres
import UnixSignals

/// Runs a daemon: migrates its schema, then runs one `ServiceGroup` of the admin
/// endpoint, the heartbeat and the daemon's own services, until SIGTERM/SIGINT.
///
/// Group order is admin, heartbeat, then the daemon's services, so on shutdown the
/// daemon's services stop first (finishing the work in hand) and `/metrics` stays up
/// until last. The grace period comes from `shutdown.gracePeriodSeconds`.
public enum DaemonRunner {
    /// - Parameters:
    ///   - migrator: The daemon's schema migrations, applied before serving (`nil` for none).
    ///   - services: The daemon's own services, started after the infrastructure.
    ///   - readiness: Extra `/readyz` checks besides PostgreSQL and Redis.
    public static func run(context: DaemonContext, migrator: Migrator?, services: [any Service],
                           readiness: [ReadinessCheck] = [], migration: MigrationPolicy = .required) async throws {
        let logger = context.logger
        logger.debug("allocator", metadata: ["malloc": "\(Allocator.description ?? "unknown")"])
        var background: [any Service] = []
        if let migrator {
            switch migration {
            case .required:
                try await migrateWithRetry(context: context, migrator: migrator)
            case .whenReachable:
                do {
                    _ = try await context.postgres.withConnection { try await migrator.migrate(using: $0) }
                } catch let error as PostgresError where error.code == .connectionFailed || error.code == .connectionLost {
                    logger.warning("PostgreSQL unreachable at start-up; starting anyway, migrating once it is back")
                    background.append(MigrationRetryService(context: context, migrator: migrator))
                }
            }
        }
        let configuration = context.configuration
        let admin = AdminServer(
            host: configuration.adminHost, port: configuration.adminPort, service: context.daemon.rawValue,
            checks: [.postgres(context.postgres), .redis(context.redis)] + readiness, logger: logger)
        let heartbeat = HeartbeatService(identity: context.identity, redis: context.redis,
                                         intervalSeconds: configuration.heartbeatIntervalSeconds,
                                         ttlSeconds: configuration.heartbeatTTLSeconds, logger: logger,
                                         jobs: context.jobs, isPaused: { context.isPaused })
        var infrastructure: [any Service] = [admin, heartbeat]
        if context.daemon.pausesForMaintenance {
            // Read before the workers start, so a restart during maintenance takes nothing.
            _ = try? await context.maintenance.refresh()
            infrastructure.append(context.maintenance)
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: (infrastructure + services).map { .init(service: $0) }
                + background.map { .init(service: $0, successTerminationBehavior: .ignore) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(Int(configuration.gracePeriodSeconds * 1000))
        logger.notice("starting", metadata: ["admin.url": "\(context.identity.adminURL ?? "")",
                                             "version": "\(TributaryVersion.current)"])
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await context.shutdown()
            throw DaemonError(startupFailure(error, configuration: configuration))
        }
        logger.notice("stopped")
        await context.shutdown()
    }

    /// Applies migrations, waiting for PostgreSQL for up to a minute at start-up.
    static func migrateWithRetry(context: DaemonContext, migrator: Migrator) async throws {
        var attempt = 0
        while true {
            do {
                let report = try await context.postgres.withConnection { try await migrator.migrate(using: $0) }
                if !report.applied.isEmpty {
                    context.logger.notice("migrated", metadata: ["schema": "\(migrator.schema)",
                                                                 "schema.version": "\(report.currentVersion)"])
                }
                return
            } catch let error as PostgresError where error.code == .connectionFailed || error.code == .connectionLost {
                attempt += 1
                if attempt >= 30 {
                    throw DaemonError("PostgreSQL is unreachable at \(context.configuration.postgres.host):\(context.configuration.postgres.port) as \(context.configuration.postgres.user); gave up after \(attempt) attempts")
                }
                context.logger.warning("PostgreSQL unreachable; retrying migration", metadata: ["attempt": "\(attempt)"])
                try await Task.sleep(for: .seconds(2))
            }
        }
    }

    private static func startupFailure(_ error: any Error, configuration: RuntimeConfiguration) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("EADDRINUSE") || text.contains("errno: 98") {
            return "an address this daemon listens on is already in use (admin port \(configuration.adminPort) on \(configuration.adminHost), or the daemon's own listen port)"
        }
        return text
    }
}

/// What a daemon does when PostgreSQL is unreachable at start-up.
public enum MigrationPolicy: Sendable {
    /// Wait for it (up to a minute), then fail: the daemon cannot work without its schema.
    case required
    /// Start anyway and migrate once it is reachable (the collector, which spools).
    case whenReachable
}

/// Applies migrations once PostgreSQL is reachable, then ends (without ending the group).
struct MigrationRetryService: Service, CustomStringConvertible {
    let context: DaemonContext
    let migrator: Migrator

    var description: String { "MigrationRetryService" }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await gracefulSleep(for: .seconds(2))
            do {
                _ = try await context.postgres.withConnection { try await migrator.migrate(using: $0) }
                context.logger.notice("migrated after PostgreSQL came back", metadata: ["schema": "\(migrator.schema)"])
                return
            } catch {
                continue
            }
        }
    }
}

/// A failure that ends a daemon or a command, with a one-line reason for the operator.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
