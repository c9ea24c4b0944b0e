import Foundation
import Synchronization

/// Generates bigint ids without a database round trip, so the collector can give a
/// batch its id before the first durable write (PostgreSQL or the spool).
///
/// Layout (most significant first): 1 zero bit, 41 bits of milliseconds since
/// 2024-01-01T00:00:00Z (good for 69 years), 10 bits of instance number, 12 bits of
/// sequence. Ids from one generator strictly increase; ids from generators with
/// different instance numbers never collide.
public final class SnowflakeID: Sendable {
    /// 2024-01-01T00:00:00Z in Unix milliseconds.
    public static let epochMilliseconds: Int64 = 1_704_067_200_000
    /// The largest instance number (10 bits).
    public static let maximumInstance = 1023

    private let instance: Int64
    private let state = Mutex<(lastMs: Int64, sequence: Int64)>((0, 0))
    private let now: @Sendable () -> Int64

    /// - Parameters:
    ///   - instance: 0…1023, unique among the processes generating ids at once.
    ///   - now: The clock in Unix milliseconds (injectable for tests).
    public init(instance: Int, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        precondition((0...Self.maximumInstance).contains(instance), "instance must be 0...1023")
        self.instance = Int64(instance)
        self.now = now
    }

    /// The next id. If 4,096 ids were already taken this millisecond, or the clock went
    /// backwards, it borrows from the next millisecond rather than wait or repeat.
    public func next() -> Int64 {
        let nowMs = now() - Self.epochMilliseconds
        let (ms, seq) = state.withLock { s -> (Int64, Int64) in
            if nowMs > s.lastMs {
                s = (nowMs, 0)
            } else {
                s.sequence += 1
                if s.sequence > 0xFFF {
                    s = (s.lastMs + 1, 0)
                }
            }
            return (s.lastMs, s.sequence)
        }
        return (ms << 22) | (instance << 12) | seq
    }

    /// The Unix time in milliseconds an id was generated at.
    public static func unixMilliseconds(of id: Int64) -> Int64 {
        (id >> 22) + epochMilliseconds
    }
}
