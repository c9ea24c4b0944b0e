import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TributaryRuntime

/// The sites and their active write keys, held in memory for every request and
/// refreshed from PostgreSQL every few seconds, so changes made with `collector sites …`
/// reach running collectors within seconds, without a restart.
///
/// Each refresh also writes a snapshot (key hashes only) next to the spool, which a
/// collector starting while PostgreSQL is down loads, so it can keep accepting.
final class SiteDirectory: Service, CustomStringConvertible {
    private struct Snapshot: Codable {
        var sites: [SiteRecord]
        var keys: [String: Int64]
    }

    private let store: SiteStore
    private let refreshInterval: Duration
    private let snapshotPath: String
    private let logger: Logger
    private let state = Mutex(Snapshot(sites: [], keys: [:]))
    private let loadedOnce = Mutex(false)

    var description: String { "SiteDirectory" }

    init(store: SiteStore, refreshSeconds: Double, snapshotPath: String, logger: Logger) {
        self.store = store
        self.refreshInterval = .milliseconds(Int(refreshSeconds * 1000))
        self.snapshotPath = snapshotPath
        self.logger = logger
    }

    /// The site a write key belongs to, if the key is active.
    func site(forKey key: String) -> SiteRecord? {
        let hash = WriteKey.hash(key)
        return state.withLock { s in
            guard let id = s.keys[hash] else { return nil }
            return s.sites.first { $0.siteID == id }
        }
    }

    /// Whether any site allows `origin` (for CORS preflights, which carry no key).
    func anySiteAllows(origin: String) -> Bool {
        state.withLock { s in
            s.sites.contains { !$0.isDisabled && ($0.allowedOrigins.isEmpty || $0.allowedOrigins.contains(origin.lowercased())) }
        }
    }

    /// Whether the directory holds data (from PostgreSQL or a snapshot).
    var isLoaded: Bool { loadedOnce.withLock { $0 } }

    /// Loads from PostgreSQL now; on failure, from the snapshot file if nothing is loaded yet.
    func refresh() async {
        do {
            let rows = try await store.loadDirectory()
            var keys: [String: Int64] = [:]
            for row in rows { for hash in row.keyHashes { keys[hash] = row.site.siteID } }
            let snapshot = Snapshot(sites: rows.map(\.site), keys: keys)
            state.withLock { $0 = snapshot }
            loadedOnce.withLock { $0 = true }
            if let data = try? JSONEncoder().encode(snapshot) {
                let temporary = snapshotPath + ".tmp"
                if FileManager.default.createFile(atPath: temporary, contents: data) {
                    _ = rename(temporary, snapshotPath)
                }
            }
        } catch {
            if !isLoaded, let data = FileManager.default.contents(atPath: snapshotPath),
               let snapshot = try? JSONDecoder().decode(Snapshot.self, from: data) {
                state.withLock { $0 = snapshot }
                loadedOnce.withLock { $0 = true }
                logger.warning("PostgreSQL unreachable; using the last snapshot of sites", metadata: ["error": "\(error)"])
            } else {
                logger.warning("could not refresh sites", metadata: ["error": "\(error)"])
            }
        }
    }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            try? await gracefulSleep(for: refreshInterval)
        }
    }
}
