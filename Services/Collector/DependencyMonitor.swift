import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TributaryRedis
import TributaryRuntime

/// Watches Redis for the request path, so requests never wait on it: every 250 ms it
/// reads the `hydrate` queue's depth (for backpressure), which also tells whether Redis
/// is reachable.
final class DependencyMonitor: Service, CustomStringConvertible {
    private struct State {
        var depth = 0
        var lastSuccess: ContinuousClock.Instant?
    }

    private let queue: ReliableQueue
    private let interval: Duration
    private let logger: Logger
    private let state = Mutex(State())
    private let depthGauge = Gauge(label: "tributary_queue_depth", dimensions: [("queue", "hydrate")])

    var description: String { "DependencyMonitor" }

    init(queue: ReliableQueue, interval: Duration = .milliseconds(250), logger: Logger) {
        self.queue = queue
        self.interval = interval
        self.logger = logger
    }

    /// Raw batches waiting for hydration, as last read.
    var queueDepth: Int { state.withLock { $0.depth } }

    /// Whether Redis answered within the last second (true until the first check fails).
    var isRedisReachable: Bool {
        state.withLock { s in s.lastSuccess.map { ContinuousClock.now - $0 < .seconds(1) } ?? true }
    }

    func check() async {
        do {
            let depth = try await queue.totalDepth()
            state.withLock {
                $0.depth = depth
                $0.lastSuccess = .now
            }
            depthGauge.record(depth)
        } catch {
            state.withLock { if $0.lastSuccess == nil { $0.lastSuccess = .now - .seconds(10) } }
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await check()
            try? await gracefulSleep(for: interval)
        }
    }
}
