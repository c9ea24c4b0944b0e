/// The names of the pipeline's queues. Each name is also the Redis Cluster hash tag of
/// all the queue's keys (see docs/queues.md).
public enum QueueName {
    /// Raw batches from the collector, consumed by hydration. Items: ``RawBatchMessage``.
    public static let hydrate = "hydrate"
    /// Hydrated events for the aggregator. Items: ``HydratedBatchMessage``.
    public static let aggregate = "aggregate"
    /// Hydrated events routed to one sink, consumed by the forwarder. Items: ``HydratedBatchMessage``.
    public static func forward(sinkID: Int64) -> String { "forward:\(sinkID)" }
}
