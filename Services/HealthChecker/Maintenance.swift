import Foundation
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// The maintenance switch, held in Redis (key `tributary:maintenance`) so it works while
/// PostgreSQL is down. While on, the health-checker sends no alerts and the status page
/// says so.
struct Maintenance: Sendable {
    static let key = MaintenanceSwitch.key

    /// The switch's value: who turned it on, when and why.
    struct State: Sendable, Codable, Hashable {
        var reason: String
        var since: Date
        var by: String
    }

    let redis: RedisConnection

    func read() async throws -> State? {
        guard let bytes = try await redis.send("GET", Self.key).bytes else { return nil }
        return try? TributaryJSON.decode(State.self, from: bytes)
    }

    func turnOn(reason: String, by: String) async throws -> State {
        let state = State(reason: reason, since: Date(), by: by)
        _ = try await redis.send("SET", Self.key, try TributaryJSON.encode(state))
        return state
    }

    func turnOff() async throws {
        _ = try await redis.send("DEL", Self.key)
    }
}
