/// The Redis keys of one reliable, fair queue. All share the hash tag `{<name>}`, so the
/// queue's scripts run on a single Redis Cluster slot.
///
/// | key | type | holds |
/// |---|---|---|
/// | `{q}:site:<site>` | list | the site's items; pushed on the left, popped on the right |
/// | `{q}:ring` | list | the sites that have items, in turn order |
/// | `{q}:sites` | set | the same sites, to keep the ring free of repeats |
/// | `{q}:inflight:<consumer>` | list | `<site>\n<item>` entries a consumer holds |
/// | `{q}:lasttake:<consumer>` | string | the token of the consumer's latest take that moved items (expires) |
/// | `{q}:consumers` | sorted set | consumer id scored by its lease's expiry (Unix ms, server clock) |
/// | `{q}:wake` | list | tokens that wake idle consumers (trimmed) |
/// | `{q}:depth` | string (integer) | items waiting in all sites' lists, kept by the scripts |
public struct QueueKeys: Sendable, Hashable {
    /// The queue's name, e.g. `hydrate` or `forward:12`.
    public let name: String

    public init(name: String) {
        precondition(!name.contains("{") && !name.contains("}"), "queue names cannot contain braces")
        self.name = name
    }

    var tag: String { "{\(name)}" }
    public var ring: String { "\(tag):ring" }
    public var sites: String { "\(tag):sites" }
    public var consumers: String { "\(tag):consumers" }
    public var wake: String { "\(tag):wake" }
    public var depth: String { "\(tag):depth" }
    /// The prefix of every per-site list; the site id follows it.
    public var sitePrefix: String { "\(tag):site:" }
    public var inflightPrefix: String { "\(tag):inflight:" }
    public func site(_ site: String) -> String { sitePrefix + site }
    public func inflight(_ consumer: String) -> String { inflightPrefix + consumer }
    public var lastTakePrefix: String { "\(tag):lasttake:" }
    /// The token of the consumer's latest take that moved items (see ``QueueScripts/ackAll``).
    public func lastTake(_ consumer: String) -> String { lastTakePrefix + consumer }
}
