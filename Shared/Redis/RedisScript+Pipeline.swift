extension RedisScript {
    /// One run of a script: its keys and arguments.
    public struct Call: Sendable {
        public var keys: [String]
        public var arguments: [any RedisArgumentConvertible]

        public init(keys: [String], arguments: [any RedisArgumentConvertible]) {
            self.keys = keys
            self.arguments = arguments
        }
    }

    /// Runs the script once per call, all in one round trip (pipelined `EVALSHA`s), and
    /// returns the replies in order. Calls the server answered `NOSCRIPT` did not run:
    /// they are sent again once the script is loaded. Any other error reply is thrown as
    /// ``RedisError/Code/serverError`` after the round trip, so the calls before and after
    /// it may have run.
    public func run(on connection: RedisConnection, calls: [Call]) async throws(RedisError) -> [RedisValue] {
        guard !calls.isEmpty else { return [] }
        var replies = [RedisValue?](repeating: nil, count: calls.count)
        var pending = Array(calls.indices)
        for _ in 0..<2 where !pending.isEmpty {
            let digest = try await loadedDigest(on: connection)
            let commands: [[any RedisArgumentConvertible]] = pending.map { i in
                var command: [any RedisArgumentConvertible] = ["EVALSHA", digest, calls[i].keys.count]
                command.append(contentsOf: calls[i].keys)
                command.append(contentsOf: calls[i].arguments)
                return command
            }
            let answers = try await connection.pipeline(commands)
            var again: [Int] = []
            for (i, answer) in zip(pending, answers) {
                if case .error(let prefix) = answer, prefix == "NOSCRIPT" {
                    again.append(i)
                } else {
                    replies[i] = answer
                }
            }
            if !again.isEmpty { forgetDigest() }
            pending = again
        }
        guard pending.isEmpty else { throw RedisError(.serverError, serverErrorPrefix: "NOSCRIPT") }
        let result = replies.map { $0 ?? .null }
        for reply in result {
            if case .error(let prefix) = reply { throw RedisError(.serverError, serverErrorPrefix: prefix) }
        }
        return result
    }
}
