/// An error from Redis or from talking to it.
///
/// Like `PSQLError`, it is a struct with an extensible ``Code``. Its `description`
/// never contains command arguments or values, only the kind of failure and, for server
/// errors, the error's prefix (`WRONGTYPE`, `NOSCRIPT`, `ERR`, …).
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String { case connectionFailed, connectionLost, serverError, unexpectedReply, closed }
        private let base: Base
        /// Could not connect (refused, unreachable, authentication failed).
        public static let connectionFailed = Code(base: .connectionFailed)
        /// The connection broke during a command (I/O error, timeout, server restart).
        /// The command may or may not have run; the connection reconnects on next use.
        public static let connectionLost = Code(base: .connectionLost)
        /// The server answered with an error reply.
        public static let serverError = Code(base: .serverError)
        /// The reply did not have the shape the caller expected.
        public static let unexpectedReply = Code(base: .unexpectedReply)
        /// The connection was closed by its owner.
        public static let closed = Code(base: .closed)
        public var description: String { base.rawValue }
    }

    public var code: Code
    /// For ``Code/serverError``: the first word of the server's message (e.g. `WRONGTYPE`).
    public var serverErrorPrefix: String?
    /// The source location that raised the error.
    public var file: String
    public var line: Int

    public init(_ code: Code, serverErrorPrefix: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.serverErrorPrefix = serverErrorPrefix
        self.file = file
        self.line = line
    }

    public var description: String {
        var text = "RedisError(\(code)"
        if let serverErrorPrefix { text += ", server: \(serverErrorPrefix)" }
        return text + ", \(file):\(line))"
    }
}
