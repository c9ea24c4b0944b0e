import TributaryModels
import TributaryRedis

/// Finds a batch's message in one reliable queue (docs/queues.md): waiting in its site's
/// list, or in a consumer's in-flight list (alive, or with an expired lease).
struct QueueLocator: Sendable {
    let redis: RedisConnection
    /// The most items of the site's list read.
    let maxScan: Int

    enum Place: Equatable {
        /// Waiting, with this many of the site's items to be taken before it.
        case waiting(ahead: Int)
        case inFlight(consumer: String, alive: Bool)
        /// Not there; `complete` is false when the site's list is longer than `maxScan`.
        case notFound(complete: Bool)
    }

    func find(queue: String, site: Int64, batch: Int64) async throws -> Place {
        let keys = QueueKeys(name: queue)
        let items = try await redis.send("LRANGE", keys.site(String(site)), 0, maxScan - 1).array ?? []
        // Pushed on the left, taken from the right: the items after it in the list go first.
        if let index = items.lastIndex(where: { Self.holds($0.bytes ?? [], batch: batch) }) {
            return .waiting(ahead: items.count - 1 - index)
        }
        let time = try await redis.send("TIME").array ?? []
        let nowMs = (Int64(time.first?.string ?? "") ?? 0) * 1000 + (Int64(time.dropFirst().first?.string ?? "") ?? 0) / 1000
        let consumers = try await redis.send("ZRANGE", keys.consumers, 0, -1, "WITHSCORES").array ?? []
        var index = 0
        while index + 1 < consumers.count {
            let consumer = consumers[index].string ?? ""
            let expiry = Int64(Double(consumers[index + 1].string ?? "") ?? 0)
            index += 2
            let held = try await redis.send("LRANGE", keys.inflight(consumer), 0, -1).array ?? []
            // In-flight entries are "<site>\n<item>".
            if held.contains(where: { entry in
                let bytes = entry.bytes ?? []
                guard let newline = bytes.firstIndex(of: 10), String(decoding: bytes[..<newline], as: UTF8.self) == String(site) else { return false }
                return Self.holds(bytes[(newline + 1)...], batch: batch)
            }) {
                return .inFlight(consumer: consumer, alive: expiry > nowMs)
            }
        }
        return .notFound(complete: items.count < maxScan)
    }

    /// Whether a queue item (a JSON message with `"batchId"`) is the one of `batch`.
    static func holds(_ item: some Collection<UInt8>, batch: Int64) -> Bool {
        let needle = Array("\"batchId\":\(batch)".utf8)
        let bytes = Array(item)
        guard bytes.count >= needle.count else { return false }
        var i = 0
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0] && Array(bytes[i..<(i + needle.count)]) == needle {
                let next = i + needle.count
                if next == bytes.count || !(48...57).contains(bytes[next]) { return true }
            }
            i += 1
        }
        return false
    }
}
