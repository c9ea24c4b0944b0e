import Foundation
import ServiceLifecycle
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Builds the `collector` daemon's own services from its context (testable without `main`).
public enum CollectorBuilder {
    /// The services, in start order: dependency monitor, site directory, partition
    /// maintainer, outbox relay, spool drainer, batch writer, then the HTTP server, so on
    /// shutdown the server stops taking requests first and the writer saves what is pending.
    public static func services(context: DaemonContext) async throws -> [any Service] {
        let configuration = try CollectorConfiguration(reader: context.reader)
        let logger = context.logger
        let queue = ReliableQueue(name: QueueName.hydrate, connection: context.redis)
        let rawStore = RawBatchStore(postgres: context.postgres)
        let spool: Spool
        do {
            spool = try Spool(directory: configuration.spoolDirectory, maximumBytes: configuration.spoolMaxBytes,
                              threadPool: context.threadPool)
        } catch {
            throw DaemonError("collector.spool.directory \(configuration.spoolDirectory) cannot be created or written")
        }
        let monitor = DependencyMonitor(queue: queue, logger: logger)
        let sites = SiteDirectory(store: SiteStore(postgres: context.postgres),
                                  refreshSeconds: configuration.sitesRefreshSeconds,
                                  snapshotPath: configuration.spoolDirectory + "/sites.snapshot.json", logger: logger)
        await sites.refresh()
        await monitor.check()
        let partitions = PartitionMaintainer(store: rawStore, daysAhead: configuration.partitionDaysAhead,
                                             retentionDays: configuration.partitionRetentionDays,
                                             lockTimeoutMs: configuration.partitionLockTimeoutMs, logger: logger,
                                             jobs: context.jobs)
        try? await partitions.maintain()
        let relay = OutboxRelay(queue: queue, store: rawStore, scanSeconds: configuration.outboxScanSeconds,
                                graceSeconds: configuration.outboxGraceSeconds,
                                bufferLimit: configuration.outboxBufferLimit, logger: logger)
        let drainer = SpoolDrainer(spool: spool, store: rawStore, relay: relay, interval: .seconds(1), logger: logger,
                                   jobs: context.jobs)
        let writer = BatchWriter(store: rawStore, spool: spool, relay: relay, monitor: monitor,
                                 maximumGroup: configuration.groupCommitMaxBatches,
                                 retryAfterSeconds: configuration.retryAfterSeconds, logger: logger, jobs: context.jobs)
        let instance = await instanceNumber(configuration: configuration, context: context)
        let handler = IngestHandler(
            configuration: configuration, sites: sites, writer: writer, monitor: monitor,
            rateLimiter: RateLimiter(burst: configuration.rateLimitBurst),
            addresses: ClientAddressResolver(trustedProxies: configuration.trustedProxies),
            ids: SnowflakeID(instance: instance), logger: logger)
        let server = IngestServer(handler: handler, host: configuration.host, port: configuration.port, logger: logger)
        return [monitor, sites, partitions, relay, drainer, writer, server]
    }

    /// This instance's number in batch ids: `collector.instance`, else a Redis counter, else the pid.
    static func instanceNumber(configuration: CollectorConfiguration, context: DaemonContext) async -> Int {
        if let instance = configuration.instance { return instance }
        if let n = try? await context.redis.send("INCR", "tributary:collector:instance-counter").integer {
            return Int(n % 1024)
        }
        return Int(ProcessInfo.processInfo.processIdentifier % 1024)
    }
}
