/// An error from PostgreSQL or from talking to it.
///
/// Its `description` never contains query parameters or the server's message text
/// (which can quote values); it names the kind of failure, the SQLSTATE and, where the
/// server gives them, the table and constraint.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionLost, server, unexpectedResult, closed, invalidQuery, invalidParameter }
        private let base: Base
        /// Could not connect (refused, authentication failed, no such database).
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection broke during a statement; it reconnects on next use. The
        /// statement's transaction did not commit unless the commit itself was in flight.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server refused the statement; see ``PostgresError/sqlState``.
        public static let server = Code(base: .server)
        /// The result did not have the shape the caller expected.
        public static let unexpectedResult = Code(base: .unexpectedResult)
        /// The connection or client was closed by its owner.
        public static let closed = Code(base: .closed)
        /// The statement could not be sent (e.g. a NUL byte in the SQL text).
        public static let invalidQuery = Code(base: .invalidQuery)
        /// A text parameter contains a NUL byte, which PostgreSQL text cannot hold (sent
        /// as is, libpq would silently cut the value there). Use `bytea` for binary data.
        public static let invalidParameter = Code(base: .invalidParameter)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The five-character SQLSTATE for ``Code/server`` errors (e.g. `23505`, `42501`).
    public var sqlState: String?
    /// The table the error concerns, when the server says.
    public var tableName: String?
    /// The constraint the error concerns, when the server says.
    public var constraintName: String?
    public var file: String
    public var line: Int

    public init(_ code: Code, sqlState: String? = nil, tableName: String? = nil, constraintName: String? = nil,
                file: String = #fileID, line: Int = #line) {
        self.code = code
        self.sqlState = sqlState
        self.tableName = tableName
        self.constraintName = constraintName
        self.file = file
        self.line = line
    }

    /// `23505`: a unique constraint was violated.
    public var isUniqueViolation: Bool { sqlState == "23505" }
    /// `42501`: the role lacks the privilege.
    public var isInsufficientPrivilege: Bool { sqlState == "42501" }

    public var description: String {
        var text = "PostgresError(\(code)"
        if let sqlState { text += ", sqlstate: \(sqlState)" }
        if let tableName { text += ", table: \(tableName)" }
        if let constraintName { text += ", constraint: \(constraintName)" }
        return text + ", \(file):\(line))"
    }
}
