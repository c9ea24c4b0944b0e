import Foundation
import Logging
import ServiceLifecycle
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Builds the `hydration` daemon's own services from its context (testable without `main`).
public enum HydrationBuilder {
    /// The partition keeper and `hydration.concurrency` workers on the `hydrate` queue.
    public static func services(context: DaemonContext) async throws -> [any Service] {
        let configuration = try HydrationConfiguration(reader: context.reader)
        let partitions = EventPartitions(postgres: context.postgres, weeksAhead: configuration.partitionWeeksAhead,
                                         retentionWeeks: configuration.retentionWeeks, logger: context.logger,
                                         jobs: context.jobs, dedupWindowDays: configuration.dedupWindowDays,
                                         traitsHistoryDays: configuration.traitsHistoryDays)
        _ = try? await partitions.ensure(around: Date())
        let instance: Int
        if let configured = configuration.instance {
            instance = configured
        } else if let n = try? await context.redis.send("INCR", "tributary:hydration:instance-counter").integer {
            instance = Int(n % 1024)
        } else {
            instance = Int(ProcessInfo.processInfo.processIdentifier % 1024)
        }
        let settings = SiteSettings(postgres: context.postgres, logger: context.logger)
        await settings.refresh()
        let sinks = SinkRules(postgres: context.postgres, interval: .milliseconds(Int(configuration.sinksRefreshSeconds * 1000)),
                              logger: context.logger)
        try? await sinks.refresh()
        var enricher = EventEnricher(clock: configuration.clock)
        enricher.keepsRawIP = { [settings] site in settings.keepsRawIP(site) }
        do {
            if !configuration.geoDatabase.isEmpty { enricher.geo = try GeoIP(path: configuration.geoDatabase) }
            if !configuration.userAgentRegexes.isEmpty {
                enricher.userAgents = try UserAgentParser(path: configuration.userAgentRegexes,
                                                          cacheLimit: configuration.userAgentCacheSize)
            }
        } catch {
            throw DaemonError("\(error)")
        }
        var handler = HydrationHandler(
            postgres: context.postgres, aggregate: ReliableQueue(name: QueueName.aggregate, connection: context.redis),
            salt: VisitorSalt(redis: context.redis), validator: EventValidator(limits: configuration.limits),
            enricher: enricher, partitions: partitions,
            ids: SnowflakeID(instance: instance), dedupWindowDays: configuration.dedupWindowDays,
            visitorContinuitySeconds: configuration.visitorContinuitySeconds, logger: context.logger)
        handler.jobs = context.jobs
        handler.allRejectedMinEvents = configuration.allRejectedMinEvents
        handler.routing = { [sinks, settings] in
            guard sinks.isLoaded else { throw DaemonError("the sinks' routing rules have not been read yet") }
            return EventRouter(rules: sinks.current, isStoreOnly: { settings.isStoreOnly($0) })
        }
        if configuration.concurrency >= context.configuration.postgresPoolSize {
            context.logger.warning("hydration.concurrency is not below hydration.postgres.poolSize: the sinks' refresh and the partition job wait for a turn to end",
                                   metadata: ["concurrency": "\(configuration.concurrency)",
                                              "poolSize": "\(context.configuration.postgresPoolSize)"])
        }
        let workers: [any Service] = (0..<configuration.concurrency).map { _ in
            QueueWorker(consumer: context.makeConsumer(queue: QueueName.hydrate, maxSitesPerTake: configuration.sitesPerTurn),
                        handler: handler,
                        recoverIntervalSeconds: context.configuration.recoverIntervalSeconds, logger: context.logger,
                        isPaused: { context.isPaused })
        }
        return [partitions, settings, sinks] + workers
    }
}
