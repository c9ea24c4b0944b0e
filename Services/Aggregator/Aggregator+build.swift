import Foundation
import ServiceLifecycle
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Builds the `aggregator` daemon's own services from its context (testable without `main`).
public enum AggregatorBuilder {
    /// The site catalog, the cleanup job, the Stats API and `aggregator.concurrency`
    /// workers on the `aggregate` queue; `/readyz` also waits for the sites to be read.
    public static func build(context: DaemonContext) async throws -> (services: [any Service], readiness: [ReadinessCheck]) {
        let configuration = try AggregatorConfiguration(reader: context.reader)
        let catalog = SiteCatalog(postgres: context.postgres, interval: .milliseconds(Int(configuration.sitesRefreshSeconds * 1000)),
                                  logger: context.logger)
        try? await catalog.refresh()
        let realtime = Realtime(redis: context.redis, windowSeconds: configuration.realtimeWindowSeconds)
        var handler = AggregatorHandler(postgres: context.postgres, catalog: catalog, realtime: realtime,
                                        configuration: configuration, logger: context.logger)
        handler.jobs = context.jobs
        let workers: [any Service] = (0..<configuration.concurrency).map { _ in
            QueueWorker(consumer: context.makeConsumer(queue: QueueName.aggregate, maxItemsPerTurn: configuration.maxItemsPerTurn),
                        handler: handler,
                        recoverIntervalSeconds: context.configuration.recoverIntervalSeconds, logger: context.logger,
                        isPaused: { context.isPaused })
        }
        let stats = StatsServer(host: configuration.statsHost, port: configuration.statsPort,
                                engine: StatsEngine(postgres: context.postgres, catalog: catalog, realtime: realtime,
                                                    configuration: configuration),
                                logger: context.logger)
        var janitor = AggregatorJanitor(postgres: context.postgres, configuration: configuration, logger: context.logger)
        janitor.jobs = context.jobs
        janitor.spans = SpanBuilder(postgres: context.postgres, catalog: catalog, limit: configuration.spanBuildLimit)
        let sitesLoaded = ReadinessCheck(name: "sites") {
            guard catalog.isLoaded else { throw DaemonError("the sites have not been read from the collector schema yet") }
        }
        return ([catalog, janitor, stats] + workers, [sitesLoaded])
    }
}
