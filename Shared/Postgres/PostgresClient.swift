import NIOPosix
import Synchronization

/// A bounded pool of ``PostgresConnection``s to one database as one role.
///
/// `withConnection` lends a connection to one task at a time (so a transaction owns
/// its connection); when all are lent, callers wait in order. Connections are made
/// lazily and reconnect on their own after failures.
public final class PostgresClient: Sendable {
    private struct State {
        var idle: [PostgresConnection] = []
        var created = 0
        var waiters: [CheckedContinuation<PostgresConnection, Never>] = []
    }

    public let configuration: PostgresConfiguration
    /// The most connections this client opens.
    public let maximumConnections: Int
    private let threadPool: NIOThreadPool
    private let state = Mutex(State())

    /// - Parameters:
    ///   - threadPool: A started pool with at least `maximumConnections` threads, so every
    ///     connection can block at once without waiting for another.
    public init(configuration: PostgresConfiguration, maximumConnections: Int, threadPool: NIOThreadPool) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.configuration = configuration
        self.maximumConnections = maximumConnections
        self.threadPool = threadPool
    }

    /// Lends a connection to `body` and takes it back afterwards.
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = await lease()
        defer { giveBack(connection) }
        return try await body(connection)
    }

    /// Runs `body` in a transaction on a lent connection.
    @discardableResult
    public func withTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction(body)
        }
    }

    /// Runs one statement on any connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws(PostgresError) -> PostgresResult {
        let connection = await lease()
        defer { giveBack(connection) }
        return try await connection.query(sql, parameters)
    }

    /// Closes every idle connection; lent ones close when given back.
    public func close() {
        let idle = state.withLock { s -> [PostgresConnection] in
            let idle = s.idle
            s.idle = []
            s.created = Int.max / 2
            return idle
        }
        idle.forEach { $0.close() }
    }

    private func lease() async -> PostgresConnection {
        enum Decision { case use(PostgresConnection), create, wait }
        let decision = state.withLock { s -> Decision in
            if let c = s.idle.popLast() { return .use(c) }
            if s.created < maximumConnections {
                s.created += 1
                return .create
            }
            return .wait
        }
        switch decision {
        case .use(let c): return c
        case .create: return PostgresConnection(configuration: configuration, threadPool: threadPool)
        case .wait:
            return await withCheckedContinuation { continuation in
                let ready = state.withLock { s -> PostgresConnection? in
                    if let c = s.idle.popLast() { return c }
                    s.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private func giveBack(_ connection: PostgresConnection) {
        let waiter = state.withLock { s -> CheckedContinuation<PostgresConnection, Never>? in
            if !s.waiters.isEmpty { return s.waiters.removeFirst() }
            if s.created > maximumConnections {
                connection.close()
            } else {
                s.idle.append(connection)
            }
            return nil
        }
        waiter?.resume(returning: connection)
    }
}
