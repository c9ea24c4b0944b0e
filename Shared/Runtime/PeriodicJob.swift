import Logging
import ServiceLifecycle

/// Runs a periodic job until shutdown: every `interval` after a success, again after
/// `retryDelay` after a failure (logged with the job's name).
public func runPeriodically(
    _ name: String, every interval: Duration, retryAfter retryDelay: Duration = .seconds(10), logger: Logger,
    _ job: () async throws -> Void
) async {
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
        do {
            try await job()
            try? await gracefulSleep(for: interval)
        } catch {
            logger.warning("periodic job failed; retrying", metadata: ["job": "\(name)", "error": "\(error)"])
            try? await gracefulSleep(for: retryDelay)
        }
    }
}
