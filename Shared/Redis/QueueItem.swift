/// An item a consumer took from a ``ReliableQueue``. It stays in the consumer's
/// in-flight list until ``QueueConsumer/ack(_:)`` (after its effects committed) or
/// ``QueueConsumer/release(_:)`` (given back unprocessed).
public struct QueueItem: Sendable, Hashable {
    /// The site the item belongs to (the fairness unit).
    public let site: String
    /// The item's bytes as pushed.
    public let payload: [UInt8]

    /// The in-flight entry: `<site>\n<payload>`.
    var entry: [UInt8] {
        Array(site.utf8) + [0x0A] + payload
    }

    public init(site: String, payload: [UInt8]) {
        self.site = site
        self.payload = payload
    }
}
