import Foundation
import NIOPosix
import ServiceLifecycle
import TributaryHTTP
import TributaryRuntime

/// Builds the `health-checker` daemon's own services from its context (testable without `main`).
public enum HealthCheckerBuilder {
    /// The monitor (checks, alerts, history), the status endpoint and the canary sender.
    public static func services(context: DaemonContext) throws -> [any Service] {
        let configuration = try HealthCheckerConfiguration(reader: context.reader)
        let threads = NIOThreadPool(numberOfThreads: 4)
        threads.start()
        let http = HTTPClient(threadPool: threads)
        let probe = PipelineProbe(postgres: context.postgres, redis: context.redis, configuration: configuration,
                                  logger: context.logger, watchesAcrossRounds: true)
        let board = StatusBoard()
        let notifier = Notifier(http: http, outbound: OutboundGuard(threadPool: threads, cacheSeconds: 30),
                                timeoutMs: configuration.notifyTimeoutMs, maxPending: configuration.notifyMaxPending,
                                runbookBase: configuration.runbookBaseURL, logger: context.logger)
        let recorder = HistoryRecorder(postgres: context.postgres, maxPending: configuration.notifyMaxPending,
                                       retentionDays: configuration.historyRetentionDays, logger: context.logger)
        let monitor = HealthMonitor(probe: probe, notifier: notifier, recorder: recorder,
                                    receivers: ReceiverStore(postgres: context.postgres), board: board, http: http,
                                    configuration: configuration, logger: context.logger)
        let tracer = EventTracer(postgres: context.postgres, redis: context.redis, searchDays: configuration.traceSearchDays,
                                 maxQueueScan: configuration.traceMaxQueueScan)
        let status = StatusServer(host: configuration.statusHost, port: configuration.statusPort, board: board,
                                  runbookBase: configuration.runbookBaseURL, tracer: tracer, adminToken: configuration.adminToken,
                                  logger: context.logger)
        let canary = CanaryService(postgres: context.postgres, http: http, configuration: configuration, logger: context.logger)
        return [status, monitor, canary]
    }
}
