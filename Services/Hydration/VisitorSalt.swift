import Crypto
import Foundation
import Synchronization
import TributaryModels
import TributaryRedis

/// The daily salt of the visitor hash: random per UTC day, created by whichever
/// hydration instance needs it first (`SET NX`), kept only in Redis
/// (`tributary:salt:<YYYY-MM-DD>`) and expiring 48 hours after creation, so yesterday's
/// salt outlives the day's last sessions and no salt is ever stored in PostgreSQL.
public final class VisitorSalt: Sendable {
    public static func key(day: String) -> String { "tributary:salt:\(day)" }
    public static let lifetimeSeconds = 48 * 3600

    private let redis: RedisConnection
    private let cache = Mutex<[String: [UInt8]]>([:])

    public init(redis: RedisConnection) {
        self.redis = redis
    }

    /// The UTC day of `date`, `YYYY-MM-DD`.
    /// (The date of its whole second, formatted without Foundation's calendar: this runs for
    /// every batch, and a `Calendar` with its time zone cost about 1 % of hydration's CPU.)
    public static func day(of date: Date) -> String {
        String(ISO8601.format(Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))).prefix(10))
    }

    /// The salt of `date`'s UTC day, creating it if this is the first request for that day.
    public func salt(for date: Date) async throws -> [UInt8] {
        let day = Self.day(of: date)
        if let cached = cache.withLock({ $0[day] }) { return cached }
        let fresh = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let hex = Hex.encode(fresh)
        let replies = try await redis.pipeline([
            ["SET", Self.key(day: day), hex, "NX", "EX", Self.lifetimeSeconds],
            ["GET", Self.key(day: day)],
        ])
        for case .error(let prefix) in replies { throw RedisError(.serverError, serverErrorPrefix: prefix) }
        guard let stored = replies[1].string, let salt = Self.decode(stored) else { throw RedisError(.unexpectedReply) }
        cache.withLock { cache in
            cache[day] = salt
            if cache.count > 3 { cache = cache.filter { $0.key >= Self.day(of: date.addingTimeInterval(-86_400)) } }
        }
        return salt
    }

    /// Yesterday's salt, when `date` is within `continuity` seconds after UTC midnight and
    /// that salt still exists (it is never created here); otherwise `nil`.
    public func previousSalt(for date: Date, continuity: Double) async throws -> [UInt8]? {
        guard continuity > 0 else { return nil }
        let secondsIntoDay = date.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400)
        guard secondsIntoDay >= 0, secondsIntoDay < continuity else { return nil }
        let day = Self.day(of: date.addingTimeInterval(-86_400))
        if let cached = cache.withLock({ $0[day] }) { return cached }
        let reply = try await redis.send("GET", Self.key(day: day))
        if case .error(let prefix) = reply { throw RedisError(.serverError, serverErrorPrefix: prefix) }
        guard let stored = reply.string, let salt = Self.decode(stored) else { return nil }
        cache.withLock { $0[day] = salt }
        return salt
    }

    static func decode(_ hex: String) -> [UInt8]? {
        guard hex.utf8.count == 64 else { return nil }
        let bytes = Array(hex.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let pair = UInt8(String(decoding: bytes[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(pair)
        }
        return out
    }

    /// hex(SHA-256(salt ‖ site ‖ 0 ‖ ip ‖ 0 ‖ user agent)) truncated to 128 bits.
    public static func visitorHash(salt: [UInt8], site: Int64, ip: String?, userAgent: String?) -> String {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Array(String(site).utf8) + [0] + Array((ip ?? "").utf8) + [0] + Array((userAgent ?? "").utf8))
        return Hex.encode(hasher.finalize().prefix(16))
    }
}
