import Metrics
import Prometheus
import Synchronization

/// The process's Prometheus registry, bootstrapped into swift-metrics once, and served
/// at `/metrics` by ``AdminServer``. Metric names carry the `tributary_` prefix.
public enum MetricsBootstrap {
    private static let registryBox = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The registry (bootstrapping swift-metrics with it on first use).
    public static var registry: PrometheusCollectorRegistry {
        registryBox.withLock { box in
            if let registry = box { return registry }
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            box = registry
            return registry
        }
    }
}
