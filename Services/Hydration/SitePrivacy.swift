import Logging
import ServiceLifecycle
import Synchronization
import TributaryPostgres
import TributaryRuntime

/// Which sites opted in to keeping raw IP addresses downstream (`collector.sites.keep_raw_ip`,
/// set with `collector sites update <site> --keep-raw-ip true`), read from the collector's
/// schema every few seconds. Every other site's events are stored without `context.ip`.
final class SitePrivacy: Service, CustomStringConvertible {
    private let postgres: PostgresClient
    private let interval: Duration
    private let logger: Logger
    private let keeping = Mutex<Set<Int64>>([])

    var description: String { "SitePrivacy" }

    init(postgres: PostgresClient, interval: Duration = .seconds(5), logger: Logger) {
        self.postgres = postgres
        self.interval = interval
        self.logger = logger
    }

    /// Whether `site` keeps raw IP addresses.
    func keepsRawIP(_ site: Int64) -> Bool {
        keeping.withLock { $0.contains(site) }
    }

    func refresh() async {
        do {
            let rows = try await postgres.query("SELECT site_id FROM collector.sites WHERE keep_raw_ip").rows
            let sites = Set(try rows.compactMap { try $0.int("site_id") })
            keeping.withLock { $0 = sites }
        } catch {
            // Until it can be read, nobody keeps raw IPs: the safe side.
            logger.warning("could not read sites' IP settings", metadata: ["error": "\(error)"])
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            try? await gracefulSleep(for: interval)
        }
    }
}
