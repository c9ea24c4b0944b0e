import Foundation

/// One raw batch as the collector saves it (in `collector.raw_batches`, or in the spool
/// while PostgreSQL is unreachable) and enqueues it.
struct RawBatchRecord: Sendable, Codable, Hashable {
    var batchID: Int64
    var siteID: Int64
    var receivedAt: Date
    var clientIP: String?
    var userAgent: String?
    var eventCount: Int
    /// The normalised body (`{"batch":[…]}`), UTF-8 JSON text.
    var payload: String
}
