/// The message types Tributary accepts: the Segment spec's six plus `metric`, our
/// extension for engineering metrics.
public enum EventType: String, Sendable, Codable, CaseIterable {
    case track, identify, page, screen, group, alias
    /// An engineering metric: `{"type":"metric","name":…,"kind":…,"value":…,"tags":{…}}`.
    case metric
}

/// The kind of a `metric` message, as statsd/DogStatsD understands them.
public enum MetricKind: String, Sendable, Codable, CaseIterable {
    case counter, gauge, timer, histogram
}
