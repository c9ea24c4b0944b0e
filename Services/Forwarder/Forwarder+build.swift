import Foundation
import NIOPosix
import ServiceLifecycle
import TributaryHTTP
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Builds the `forwarder` daemon's own services from its context (testable without `main`).
public enum ForwarderBuilder {
    /// The sink supervisor (one runner per enabled sink) and the cleanup job; `/readyz`
    /// also waits for the sinks to be read.
    public static func build(context: DaemonContext) async throws -> (services: [any Service], readiness: [ReadinessCheck]) {
        let configuration = try ForwarderConfiguration(reader: context.reader)
        let catalog = SinkCatalog(postgres: context.postgres, logger: context.logger)
        try? await catalog.refresh()
        let supervisor = SinkSupervisor(catalog: catalog, configuration: configuration, makeRunner: { id, concurrency, stop in
            // The sink's own threads: its requests in flight, one for its retries, and its address
            // lookups. A sink that hangs can block only these, never another sink's.
            let threads = NIOThreadPool(numberOfThreads: concurrency + 1)
            threads.start()
            let delivery = DeliveryContext(http: HTTPClient(threadPool: threads),
                                           outbound: OutboundGuard(threadPool: threads, cacheSeconds: configuration.dnsCacheSeconds),
                                           maxResponseBytes: configuration.maxResponseBytes)
            let deliverer = Deliverer(postgres: context.postgres, catalog: catalog, context: delivery, policy: configuration.retry,
                                      logger: context.logger, jobs: context.jobs)
            let consumer = QueueConsumer(
                queue: ReliableQueue(name: QueueName.forward(sinkID: id), connection: context.redis),
                consumerID: QueueConsumer.makeID(prefix: "forwarder"),
                // Never used for a blocking wait: the runner polls (see SinkRunner.gather).
                blockingConnection: context.redis,
                configuration: context.configuration.queue)
            var runner = SinkRunner(sinkID: id, consumer: consumer, catalog: catalog, deliverer: deliverer, threads: threads,
                              breaker: CircuitBreaker(threshold: configuration.breakerFailures,
                                                      openSeconds: configuration.breakerOpenSeconds,
                                                      maxOpenSeconds: configuration.breakerMaxOpenSeconds),
                              configuration: configuration, recoverIntervalSeconds: context.configuration.recoverIntervalSeconds,
                              logger: context.logger, stop: stop)
            runner.isPaused = { context.isPaused }
            return runner
        }, logger: context.logger)
        var janitor = ForwarderJanitor(postgres: context.postgres, configuration: configuration, logger: context.logger)
        janitor.jobs = context.jobs
        let loaded = ReadinessCheck(name: "sinks") {
            guard catalog.isLoaded else { throw DaemonError("the sinks have not been read from the forwarder schema yet") }
        }
        return ([supervisor, janitor], [loaded])
    }
}
