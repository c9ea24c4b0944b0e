/// An item of the `aggregate` queue and of each `forward:<sinkId>` queue: the events of
/// one raw batch that the consumer must act on.
///
/// `batchID` is the raw batch's id, so a stage's ledger (keyed by site and batch id)
/// makes a redelivered message a no-op.
public struct HydratedBatchMessage: Sendable, Codable, Hashable {
    /// The message format version; this is version 1.
    public var version: Int
    public var batchID: Int64
    public var siteID: Int64
    /// Set on `forward:` queues: the sink the events are for.
    public var sinkID: Int64?
    public var events: [HydratedEvent]

    public init(batchID: Int64, siteID: Int64, sinkID: Int64? = nil, events: [HydratedEvent]) {
        self.version = 1
        self.batchID = batchID
        self.siteID = siteID
        self.sinkID = sinkID
        self.events = events
    }

    enum CodingKeys: String, CodingKey {
        case version, batchID = "batchId", siteID = "siteId", sinkID = "sinkId", events
    }
}
