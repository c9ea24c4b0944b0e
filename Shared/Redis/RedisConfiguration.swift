/// Where and how to connect to Redis.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    /// A unix socket path; when set, `host` and `port` are not used.
    public var unixSocketPath: String?
    public var database: Int
    public var password: String?
    /// Connect timeout in milliseconds.
    public var connectTimeoutMs: Int
    /// Socket read/write timeout in milliseconds. Must exceed any blocking pop's timeout.
    public var socketTimeoutMs: Int
    /// The first reconnect delay after a failure, in milliseconds; doubled per failure.
    public var reconnectBackoffMs: Int
    /// The largest reconnect delay, in milliseconds.
    public var reconnectBackoffMaxMs: Int
    /// Seed nodes of a Redis Cluster (`host:port`); when set, commands go to the master of
    /// their key's slot, and `host`, `port` and `database` are not used.
    public var clusterNodes: [String] = []

    public init(host: String = "127.0.0.1", port: Int = 6379, unixSocketPath: String? = nil, database: Int = 0,
                password: String? = nil, connectTimeoutMs: Int = 2_000, socketTimeoutMs: Int = 5_000,
                reconnectBackoffMs: Int = 50, reconnectBackoffMaxMs: Int = 2_000) {
        self.host = host
        self.port = port
        self.unixSocketPath = unixSocketPath
        self.database = database
        self.password = password
        self.connectTimeoutMs = connectTimeoutMs
        self.socketTimeoutMs = socketTimeoutMs
        self.reconnectBackoffMs = reconnectBackoffMs
        self.reconnectBackoffMaxMs = reconnectBackoffMaxMs
    }

    /// Parses `redis://[:password@]host[:port][/db]` or `unix:///path/to/socket`.
    /// Returns `nil` for anything else.
    public init?(url: String) {
        self.init()
        if url.hasPrefix("unix://") {
            let path = String(url.dropFirst("unix://".count))
            guard path.hasPrefix("/") else { return nil }
            unixSocketPath = path
            return
        }
        guard url.hasPrefix("redis://") else { return nil }
        var rest = Substring(url.dropFirst("redis://".count))
        if let at = rest.lastIndex(of: "@") {
            let auth = rest[..<at]
            let pw = auth.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).last.map(String.init)
            password = (pw?.isEmpty ?? true) ? nil : pw
            rest = rest[rest.index(after: at)...]
        }
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            if !db.isEmpty {
                guard let n = Int(db), n >= 0 else { return nil }
                database = n
            }
            rest = rest[..<slash]
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { return nil }
        host = String(rest)
    }
}
