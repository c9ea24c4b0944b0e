import Synchronization

/// A Lua script run with `EVALSHA`, loaded with `SCRIPT LOAD` on first use and again
/// whenever the server answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`).
///
/// A script is the tool when several keys must change atomically. Every key a script
/// touches must share one hash tag so it also runs on Redis Cluster.
public final class RedisScript: Sendable {
    /// The Lua source.
    public let source: String
    private let sha = Mutex<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    /// Runs the script with `keys` and `arguments` on `connection`.
    public func run(on connection: RedisConnection, keys: [String],
                    arguments: [any RedisArgumentConvertible]) async throws(RedisError) -> RedisValue {
        try await run(on: connection, calls: [Call(keys: keys, arguments: arguments)])[0]
    }

    /// The script's SHA1, loading the script first if it is not known to be loaded.
    func loadedDigest(on connection: RedisConnection) async throws(RedisError) -> String {
        if let cached = sha.withLock({ $0 }) { return cached }
        guard let loaded = try await connection.send("SCRIPT", "LOAD", source).string else {
            throw RedisError(.unexpectedReply)
        }
        sha.withLock { $0 = loaded }
        return loaded
    }

    /// Forgets the digest after a `NOSCRIPT` (the server restarted or flushed its scripts).
    func forgetDigest() { sha.withLock { $0 = nil } }
}
