import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TributaryModels
import TributaryPostgres
import TributaryRuntime

/// The sites as the aggregator needs them, read from the collector's schema every few
/// seconds: name, time zone, the custom properties to break down, and read key hashes.
final class SiteCatalog: Service, CustomStringConvertible {
    struct Site: Sendable {
        var id: Int64
        var name: String
        var timeZone: String
        var props: [String]
        var readKeyHashes: Set<String>
    }

    private let postgres: PostgresClient
    private let interval: Duration
    private let logger: Logger
    private let sites = Mutex<[Int64: Site]>([:])
    private let loaded = Mutex(false)

    var description: String { "SiteCatalog" }

    init(postgres: PostgresClient, interval: Duration = .seconds(5), logger: Logger) {
        self.postgres = postgres
        self.interval = interval
        self.logger = logger
    }

    func site(_ id: Int64) -> Site? { sites.withLock { $0[id] } }

    /// Every site read so far, by id.
    var all: [Site] { sites.withLock { $0.values.sorted { $0.id < $1.id } } }

    /// A site by id (digits) or name.
    func find(_ reference: String) -> Site? {
        sites.withLock { all in
            if let id = Int64(reference), let site = all[id] { return site }
            return all.values.first { $0.name == reference }
        }
    }

    func clock(_ id: Int64) -> LocalClock { LocalClock(identifier: site(id)?.timeZone ?? "UTC") }
    func props(_ id: Int64) -> [String] { site(id)?.props ?? [] }
    var isLoaded: Bool { loaded.withLock { $0 } }

    /// Reads the sites now; throws when the collector's schema cannot be read.
    func refresh() async throws {
        let rows = try await postgres.query("""
            SELECT s.site_id, s.name, s.time_zone, s.stats_props::text AS props,
                   coalesce(string_agg(k.key_hash, ',') FILTER (WHERE k.revoked_at IS NULL AND k.kind = 'read'), '') AS hashes
            FROM collector.sites s LEFT JOIN collector.write_keys k ON k.site_id = s.site_id
            GROUP BY s.site_id
            """).rows
        var out: [Int64: Site] = [:]
        for row in rows {
            guard let id = try row.int("site_id") else { continue }
            let props = (try? JSONValue.parse(Array((try row.string("props") ?? "[]").utf8)))
            var keys: [String] = []
            if case .array(let values)? = props { keys = values.compactMap(\.stringValue) }
            out[id] = Site(id: id, name: try row.string("name") ?? "", timeZone: try row.string("time_zone") ?? "UTC",
                           props: keys,
                           readKeyHashes: Set((try row.string("hashes") ?? "").split(separator: ",").map(String.init)))
        }
        sites.withLock { $0 = out }
        loaded.withLock { $0 = true }
    }

    /// Whether `key` is a live read key of `site`.
    func isReadKey(_ key: String, of site: Int64) -> Bool {
        let hash = Hex.encode(SHA256.hash(data: Array(key.utf8)))
        return self.site(site)?.readKeyHashes.contains(hash) ?? false
    }

    func run() async throws {
        await runPeriodically("sites refresh", every: interval, retryAfter: interval, logger: logger) {
            try await refresh()
        }
    }
}
