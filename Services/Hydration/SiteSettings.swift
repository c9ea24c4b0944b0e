import Logging
import ServiceLifecycle
import Synchronization
import TributaryPostgres
import TributaryRuntime

/// The per-site settings hydration acts on, read from the collector's schema every few
/// seconds: which sites opted in to keeping raw IP addresses downstream
/// (`collector sites update <site> --keep-raw-ip true`; every other site's events are
/// stored without `context.ip`), and which are store-only (`--store-only true`: their
/// events are stored and sent nowhere).
final class SiteSettings: Service, CustomStringConvertible {
    private let postgres: PostgresClient
    private let interval: Duration
    private let logger: Logger
    private let state = Mutex<(keeping: Set<Int64>, storeOnly: Set<Int64>)>(([], []))

    var description: String { "SiteSettings" }

    init(postgres: PostgresClient, interval: Duration = .seconds(5), logger: Logger) {
        self.postgres = postgres
        self.interval = interval
        self.logger = logger
    }

    /// Whether `site` keeps raw IP addresses.
    func keepsRawIP(_ site: Int64) -> Bool {
        state.withLock { $0.keeping.contains(site) }
    }

    /// Whether `site`'s events are only stored.
    func isStoreOnly(_ site: Int64) -> Bool {
        state.withLock { $0.storeOnly.contains(site) }
    }

    func refresh() async {
        do {
            let rows = try await postgres.query(
                "SELECT site_id, keep_raw_ip, store_only FROM collector.sites WHERE keep_raw_ip OR store_only").rows
            var keeping: Set<Int64> = [], storeOnly: Set<Int64> = []
            for row in rows {
                guard let site = try row.int("site_id") else { continue }
                if try row.bool("keep_raw_ip") == true { keeping.insert(site) }
                if try row.bool("store_only") == true { storeOnly.insert(site) }
            }
            state.withLock { $0 = (keeping, storeOnly) }
        } catch {
            // Until they can be read, nobody keeps raw IPs (the safe side), and store-only
            // sites keep their last known setting.
            logger.warning("could not read sites' settings", metadata: ["error": "\(error)"])
            state.withLock { $0.keeping = [] }
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            try? await gracefulSleep(for: interval)
        }
    }
}
