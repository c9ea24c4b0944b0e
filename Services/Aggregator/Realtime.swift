import Foundation
import TributaryRedis

/// Current visitors: per site, a Redis sorted set of visitor → last seen (ms), trimmed to
/// the window on every write, so counting is one `ZCOUNT` however large the site.
struct Realtime: Sendable {
    let redis: RedisConnection
    let windowSeconds: Int

    static func key(site: Int64) -> String { "tributary:aggregator:realtime:\(site)" }

    /// Records that these visitors were seen at these times (only moves a time forward).
    func record(site: Int64, seen: [String: Date], now: Date = Date()) async throws {
        let horizon = now.addingTimeInterval(-Double(windowSeconds))
        let recent = seen.filter { $0.value > horizon }
        guard !recent.isEmpty else { return }
        let key = Self.key(site: site)
        var zadd: [any RedisArgumentConvertible] = ["ZADD", key, "GT"]
        for (visitor, time) in recent {
            zadd.append(Int64(min(time, now).timeIntervalSince1970 * 1000))
            zadd.append(visitor)
        }
        let replies = try await redis.pipeline([
            zadd,
            ["ZREMRANGEBYSCORE", key, "-inf", "(" + String(Int64(horizon.timeIntervalSince1970 * 1000))],
            ["EXPIRE", key, windowSeconds * 2],
        ])
        for case .error(let prefix) in replies { throw RedisError(.serverError, serverErrorPrefix: prefix) }
    }

    /// Distinct visitors seen within the window before `now`.
    func count(site: Int64, now: Date = Date()) async throws -> Int64 {
        let horizon = Int64(now.addingTimeInterval(-Double(windowSeconds)).timeIntervalSince1970 * 1000)
        let reply = try await redis.send("ZCOUNT", Self.key(site: site), String(horizon), "+inf")
        if case .error(let prefix) = reply { throw RedisError(.serverError, serverErrorPrefix: prefix) }
        return reply.integer ?? 0
    }
}
