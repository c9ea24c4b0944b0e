import Foundation
import Logging
import Synchronization
import TributaryModels
import TributaryPostgres

/// Every sink as last read from `forwarder.sinks`, with its secret as last read from its
/// secret file (never logged). Refreshed by the ``SinkSupervisor``.
final class SinkCatalog: Sendable {
    struct Entry: Sendable {
        var sink: Sink
        var secret: String?
        /// Why the secret could not be read, if it could not.
        var secretError: String?
    }

    private let store: SinkStore
    private let logger: Logger
    private let state = Mutex<(entries: [Int64: Entry], loaded: Bool)>(([:], false))

    init(postgres: PostgresClient, logger: Logger) {
        self.store = SinkStore(postgres: postgres)
        self.logger = logger
    }

    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// The sink's latest definition and secret.
    func entry(_ id: Int64) -> Entry? { state.withLock { $0.entries[id] } }

    /// The enabled sinks.
    var enabled: [Sink] { state.withLock { $0.entries.values.map(\.sink).filter(\.enabled).sorted { $0.id < $1.id } } }

    func refresh() async throws {
        let sinks = try await store.list()
        var entries: [Int64: Entry] = [:]
        for sink in sinks {
            var entry = Entry(sink: sink)
            if let path = sink.secretFile {
                do {
                    entry.secret = try String(contentsOfFile: path, encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                } catch {
                    entry.secretError = "cannot read the secret file \(path)"
                }
            }
            entries[sink.id] = entry
        }
        state.withLock { $0 = (entries, true) }
    }
}
