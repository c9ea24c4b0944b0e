import CLibpq
import NIOPosix
import Synchronization

/// One connection to PostgreSQL over libpq's blocking API.
///
/// Thread safety: the `PGconn` pointer is owned by this object only, lives inside a
/// `Mutex`, and is touched only while the mutex is held, on a thread of the injected
/// `NIOThreadPool` (never on Swift's cooperative pool); so the class is `Sendable`.
/// Statements from several tasks are serialised; use ``PostgresClient`` to share
/// connections, and ``withTransaction(_:)`` for work that must commit together.
///
/// After the connection breaks (server restart, network), the next statement
/// reconnects, waiting a backoff that doubles per consecutive failure. Statements take
/// parameters only (`PQexecParams`); bulk writes use `COPY … FROM STDIN`. A statement
/// that runs a second time on a connection is prepared there (see ``StatementCache``).
public final class PostgresConnection: Sendable {
    struct State {
        var connection: OpaquePointer? {
            didSet { statements.removeAll() }
        }
        var statements: StatementCache
        var consecutiveFailures = 0
        var retryAfter: ContinuousClock.Instant?
        var isClosed = false
    }

    public let configuration: PostgresConfiguration
    private let threadPool: NIOThreadPool
    private let state: Mutex<State>

    /// Creates a connection; it connects lazily on the first statement.
    public init(configuration: PostgresConfiguration, threadPool: NIOThreadPool) {
        self.configuration = configuration
        self.threadPool = threadPool
        self.state = Mutex(State(statements: StatementCache(capacity: configuration.preparedStatements)))
    }

    deinit {
        state.withLock { s in
            if let c = s.connection { PQfinish(c) }
            s.connection = nil
        }
    }

    /// Closes the connection (idempotent); later statements throw ``PostgresError/Code/closed``.
    public func close() {
        state.withLock { s in
            s.isClosed = true
            if let c = s.connection { PQfinish(c) }
            s.connection = nil
        }
    }

    /// Runs one statement with parameters `$1…$n` and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws(PostgresError) -> PostgresResult {
        let values = parameters.map(\.postgresValue)
        return try await offload { connection, statements throws(PostgresError) in
            try Self.execParams(connection, sql, values, statements: &statements)
        }
    }

    /// Runs SQL text without parameters, possibly several statements (migrations only:
    /// never pass text that contains data).
    public func execute(script sql: String) async throws(PostgresError) {
        _ = try await offload { connection, _ throws(PostgresError) in
            guard !sql.utf8.contains(0) else { throw PostgresError(.invalidQuery) }
            let result = PQexec(connection, sql)
            defer { PQclear(result) }
            return try Self.check(connection, result)
        }
    }

    /// Streams `data` into `COPY … FROM STDIN`; `sql` names the table, columns and format
    /// (see ``PostgresCopyWriter`` for the binary format). Returns the rows copied.
    /// If any row is bad the whole COPY fails and nothing is written.
    @discardableResult
    public func copy(_ sql: String, data: [UInt8]) async throws(PostgresError) -> Int {
        try await offload { connection, _ throws(PostgresError) in
            try Self.copyBlocking(connection, sql, data)
        }.affectedRows
    }

    /// Runs `body` inside `BEGIN … COMMIT`; rolls back if it throws.
    @discardableResult
    public func withTransaction<T: Sendable>(
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await query("BEGIN")
        let value: T
        do {
            value = try await body(self)
        } catch {
            _ = try? await query("ROLLBACK")
            throw error
        }
        try await query("COMMIT")
        return value
    }

    // MARK: - Blocking part

    private func offload(
        _ work: @escaping @Sendable (OpaquePointer, inout StatementCache) throws(PostgresError) -> PostgresResult
    ) async throws(PostgresError) -> PostgresResult {
        if let until = state.withLock({ $0.retryAfter }), until > .now {
            do { try await Task.sleep(until: until) } catch { throw PostgresError(.closed) }
        }
        do {
            return try await threadPool.runIfActive { [self] in
                try self.state.withLock { (s: inout State) throws(PostgresError) -> PostgresResult in
                    if s.isClosed { throw PostgresError(.closed) }
                    if s.connection == nil {
                        do throws(PostgresError) {
                            s.connection = try Self.connect(configuration)
                        } catch {
                            Self.recordFailure(&s, configuration)
                            throw error
                        }
                    }
                    let connection = s.connection!
                    do throws(PostgresError) {
                        let result = try work(connection, &s.statements)
                        s.consecutiveFailures = 0
                        s.retryAfter = nil
                        return result
                    } catch {
                        if PQstatus(connection) != CONNECTION_OK {
                            PQfinish(connection)
                            s.connection = nil
                            Self.recordFailure(&s, configuration)
                            if error.code != .invalidQuery && error.code != .invalidParameter { throw PostgresError(.connectionLost) }
                        }
                        throw error
                    }
                }
            }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(.closed)
        }
    }

    private static func recordFailure(_ s: inout State, _ configuration: PostgresConfiguration) {
        s.consecutiveFailures += 1
        let exponent = min(s.consecutiveFailures - 1, 16)
        let delay = min(configuration.reconnectBackoffMs << exponent, configuration.reconnectBackoffMaxMs)
        s.retryAfter = .now + .milliseconds(delay)
    }

    private static func connect(_ configuration: PostgresConfiguration) throws(PostgresError) -> OpaquePointer {
        let pairs = configuration.keywords
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keyPointers: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var valuePointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let connection = PQconnectdbParams(&keyPointers, &valuePointers, 0) else {
            throw PostgresError(.connectionFailed)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            PQfinish(connection)
            throw PostgresError(.connectionFailed)
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        return connection
    }

    private static func execParams(_ connection: OpaquePointer, _ sql: String, _ values: [PostgresValue],
                                   statements: inout StatementCache) throws(PostgresError) -> PostgresResult {
        guard !sql.utf8.contains(0) else { throw PostgresError(.invalidQuery) }
        var flat: [UInt8] = []
        var offsets: [Int?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        let types: [UInt32] = values.map(\.oid)
        for value in values {
            if let wire = value.wire {
                if !wire.binary && wire.bytes.contains(0) { throw PostgresError(.invalidParameter) }
                offsets.append(flat.count)
                lengths.append(Int32(wire.bytes.count))
                formats.append(wire.binary ? 1 : 0)
                flat.append(contentsOf: wire.bytes)
                if !wire.binary { flat.append(0) }
            } else {
                offsets.append(nil)
                lengths.append(0)
                formats.append(0)
            }
        }
        flat.append(0)
        let name = try statements.name(for: sql, types: types) { name throws(PostgresError) in
            let prepared = PQprepare(connection, name, sql, Int32(types.count), types)
            defer { PQclear(prepared) }
            _ = try check(connection, prepared)
        }
        let result: OpaquePointer? = flat.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            let pointers: [UnsafePointer<CChar>?] = offsets.map { $0.map { base + $0 } }
            if let name {
                return PQexecPrepared(connection, name, Int32(values.count), pointers, lengths, formats, 0)
            }
            return PQexecParams(connection, sql, Int32(values.count), types, pointers, lengths, formats, 0)
        }
        defer { PQclear(result) }
        do throws(PostgresError) {
            return try check(connection, result)
        } catch {
            // A table changed under a prepared statement ("cached plan must not change
            // result type"): forget it, so the next run prepares it afresh.
            if name != nil && error.sqlState == "0A000" { statements.forget(sql: sql, types: types) }
            throw error
        }
    }

    private static func copyBlocking(_ connection: OpaquePointer, _ sql: String,
                                     _ data: [UInt8]) throws(PostgresError) -> PostgresResult {
        guard !sql.utf8.contains(0) else { throw PostgresError(.invalidQuery) }
        let start = PQexec(connection, sql)
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            defer { PQclear(start) }
            _ = try check(connection, start)
            throw PostgresError(.unexpectedResult)
        }
        PQclear(start)
        var sent = true
        data.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let chunk = 256 * 1024
            var offset = 0
            while offset < buffer.count && sent {
                let n = min(chunk, buffer.count - offset)
                let pointer = UnsafeRawPointer(base + offset).assumingMemoryBound(to: CChar.self)
                sent = PQputCopyData(connection, pointer, Int32(n)) == 1
                offset += n
            }
        }
        let ended = PQputCopyEnd(connection, sent ? nil : "client aborted") == 1
        var final: PostgresResult?
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            do throws(PostgresError) {
                final = try check(connection, result)
            } catch {
                failure = failure ?? error
            }
        }
        if let failure { throw failure }
        guard sent, ended, let final else { throw PostgresError(.connectionLost) }
        return final
    }

    /// Maps a result to rows or a typed error.
    private static func check(_ connection: OpaquePointer, _ result: OpaquePointer?) throws(PostgresError) -> PostgresResult {
        guard let result else { throw PostgresError(.connectionLost) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(columns: [], rows: [], affectedRows: affectedRows(result))
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            return rows(result)
        default:
            if PQstatus(connection) != CONNECTION_OK { throw PostgresError(.connectionLost) }
            func field(_ code: Character) -> String? {
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            throw PostgresError(.server, sqlState: field("C"), tableName: field("t"), constraintName: field("n"))
        }
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    private static func rows(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var index: [String: Int] = [:]
        for c in 0..<columnCount {
            let name = String(cString: PQfname(result, Int32(c)))
            columns.append(name)
            if index[name] == nil { index[name] = c }
        }
        var rows: [PostgresRow] = []
        rows.reserveCapacity(rowCount)
        for r in 0..<rowCount {
            var cells: [[UInt8]?] = []
            cells.reserveCapacity(columnCount)
            for c in 0..<columnCount {
                if PQgetisnull(result, Int32(r), Int32(c)) == 1 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(r), Int32(c)))
                    let pointer = PQgetvalue(result, Int32(r), Int32(c))!
                    cells.append(Array(UnsafeRawBufferPointer(start: pointer, count: length)))
                }
            }
            rows.append(PostgresRow(index: index, cells: cells))
        }
        return PostgresResult(columns: columns, rows: rows, affectedRows: rowCount)
    }
}
