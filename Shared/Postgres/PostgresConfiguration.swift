/// Where and how to connect to PostgreSQL, as libpq connection keywords.
public struct PostgresConfiguration: Sendable, Hashable {
    /// A host name, an address, or a unix socket directory (starting with `/`).
    public var host: String
    public var port: Int
    public var database: String
    /// The role: each daemon connects as its own (`tributary_<daemon>`).
    public var user: String
    public var password: String?
    public var connectTimeoutSeconds: Int
    /// libpq's `application_name`, shown in `pg_stat_activity`.
    public var applicationName: String
    /// The first reconnect delay after a failure, in milliseconds; doubled per failure.
    public var reconnectBackoffMs: Int
    /// The largest reconnect delay, in milliseconds.
    public var reconnectBackoffMaxMs: Int
    /// `statement_timeout` for every statement, in milliseconds (0 = none).
    public var statementTimeoutMs: Int
    /// How many statements each connection keeps prepared (0 = none): a statement run a
    /// second time is prepared, so later runs skip parsing and analysis. Each run is
    /// still planned for its own values (`plan_cache_mode = force_custom_plan`).
    public var preparedStatements: Int

    public init(host: String = "127.0.0.1", port: Int = 5432, database: String = "tributary",
                user: String, password: String? = nil, connectTimeoutSeconds: Int = 5,
                applicationName: String = "tributary", reconnectBackoffMs: Int = 100,
                reconnectBackoffMaxMs: Int = 5_000, statementTimeoutMs: Int = 60_000, preparedStatements: Int = 256) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.applicationName = applicationName
        self.reconnectBackoffMs = reconnectBackoffMs
        self.reconnectBackoffMaxMs = reconnectBackoffMaxMs
        self.statementTimeoutMs = statementTimeoutMs
        self.preparedStatements = preparedStatements
    }

    /// The keyword/value pairs for `PQconnectdbParams`.
    var keywords: [(String, String)] {
        var pairs: [(String, String)] = [
            ("host", host), ("port", String(port)), ("dbname", database), ("user", user),
            ("connect_timeout", String(connectTimeoutSeconds)), ("application_name", applicationName),
            // Prepared statements are planned for each run's values, as unprepared ones are:
            // a generic plan for a range of times can be far slower than the custom one
            // (preparing still saves the parse and analysis).
            ("options", "-c TimeZone=UTC -c DateStyle=ISO -c statement_timeout=\(statementTimeoutMs) -c plan_cache_mode=force_custom_plan"),
            ("client_encoding", "UTF8"),
        ]
        if let password { pairs.append(("password", password)) }
        return pairs
    }
}
