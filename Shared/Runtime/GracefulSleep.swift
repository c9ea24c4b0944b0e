import ServiceLifecycle

/// Sleeps for `duration`, returning early when graceful shutdown begins (or throwing
/// `CancellationError` if the task is cancelled).
public func gracefulSleep(for duration: Duration) async throws {
    try await cancelWhenGracefulShutdown {
        try await Task.sleep(for: duration)
    }
}
