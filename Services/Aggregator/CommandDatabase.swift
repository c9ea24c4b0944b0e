import Logging
import TributaryPostgres
import TributaryRuntime

/// What the aggregator's one-shot commands (`rebuild`, `build-spans`) work with: the
/// configuration, one PostgreSQL connection and the sites read once.
struct CommandDatabase: Sendable {
    let configuration: AggregatorConfiguration
    let postgres: PostgresClient
    let catalog: SiteCatalog

    /// Loads the config at `path`, connects, reads the sites, runs `body`, then closes;
    /// a server that cannot be reached is a one-line error naming it.
    static func with<T: Sendable>(config path: String?, label: String,
                                  _ body: (CommandDatabase) async throws -> T) async throws -> T {
        let reader = try await ConfigLoader.load(path: path)
        let runtime = try RuntimeConfiguration(daemon: .aggregator, reader: reader)
        let configuration = try AggregatorConfiguration(reader: reader)
        let pool = NIOThreadPoolBox(threads: 1)
        defer { pool.stop() }
        let client = PostgresClient(configuration: runtime.postgres, maximumConnections: 1, threadPool: pool.pool)
        defer { client.close() }
        let catalog = SiteCatalog(postgres: client, logger: Logger(label: label))
        do {
            try await catalog.refresh()
        } catch let error as PostgresError where error.code == .connectionFailed {
            throw DaemonError("cannot connect to PostgreSQL at \(runtime.postgres.host):\(runtime.postgres.port) as \(runtime.postgres.user)")
        }
        return try await body(CommandDatabase(configuration: configuration, postgres: client, catalog: catalog))
    }

    /// The site a `--site` option names (id or name).
    func site(_ reference: String) throws -> SiteCatalog.Site {
        guard let record = catalog.find(reference) else { throw DaemonError("no site \(reference)") }
        return record
    }
}
