import Logging
import ServiceLifecycle
import Synchronization
import TributaryModels
import TributaryPostgres

/// The enabled sinks' routing rules, read from `forwarder.sinks` every few seconds, so a
/// sink added, changed or disabled with `forwarder sinks …` takes effect without restart.
///
/// Until the first read succeeds, ``isLoaded`` is false and ``current`` is empty.
public final class SinkRules: Service, CustomStringConvertible {
    private let postgres: PostgresClient
    private let interval: Duration
    private let logger: Logger
    private let state = Mutex<(rules: [SinkRule], loaded: Bool)>(([], false))

    public var description: String { "SinkRules" }

    public init(postgres: PostgresClient, interval: Duration = .seconds(2), logger: Logger) {
        self.postgres = postgres
        self.interval = interval
        self.logger = logger
    }

    /// The enabled sinks' rules as last read.
    public var current: [SinkRule] { state.withLock { $0.rules } }

    /// Whether the rules have been read at least once.
    public var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Reads the rules now. No forwarder schema yet (the forwarder never migrated) means no sinks.
    public func refresh() async throws {
        guard let rows = try await enabledSinks() else {
            state.withLock { $0 = ([], true) }
            return
        }
        let rules = try rows.compactMap(Self.rule(from:))
        state.withLock { $0 = (rules, true) }
    }

    /// The columns ``rule(from:)`` reads, for a `SELECT ... FROM forwarder.sinks`.
    public static let columns = """
        sink_id, name, type, array_to_json(sites)::text AS sites, array_to_json(event_types)::text AS types,
        array_to_json(event_names)::text AS names, coalesce((settings->>'eventCounters')::boolean, false) AS counters
        """

    /// One sink's routing rule from a row of ``columns``; nil for a row that names no known type.
    public static func rule(from row: PostgresRow) throws -> SinkRule? {
        guard let id = try row.int("sink_id"), let name = try row.string("name"),
              let type = SinkType(rawValue: try row.string("type") ?? "") else { return nil }
        func strings(_ column: String) throws -> [String] {
            guard let text = try row.string(column), let value = try? JSONValue.parse(Array(text.utf8)),
                  case .array(let items) = value else { return [] }
            return items.compactMap(\.stringValue)
        }
        var sites: Set<Int64> = []
        if let text = try row.string("sites"), case .array(let items)? = try? JSONValue.parse(Array(text.utf8)) {
            for item in items { if case .int(let n) = item { sites.insert(n) } }
        }
        return SinkRule(sinkID: id, name: name, type: type, sites: sites,
                        eventTypes: Set(try strings("types").compactMap(EventType.init(rawValue:))),
                        eventNames: Set(try strings("names")), eventCounters: try row.bool("counters") ?? false)
    }

    /// The enabled sinks' rows, or `nil` when the forwarder schema does not exist yet.
    private func enabledSinks() async throws -> [PostgresRow]? {
        do {
            return try await postgres.query("""
            SELECT \(Self.columns) FROM forwarder.sinks WHERE disabled_at IS NULL ORDER BY sink_id
            """).rows
        } catch {
            if error.sqlState == "42P01" || error.sqlState == "3F000" { return nil }
            throw error
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do { try await refresh() } catch {
                logger.warning("could not read the sinks' routing rules; keeping the last ones", metadata: ["error": "\(error)"])
            }
            try? await gracefulSleep(for: interval)
        }
    }
}
