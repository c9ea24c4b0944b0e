import Foundation
import TributaryModels
import TributaryPostgres

/// The SQL of `forwarder.sinks`.
struct SinkStore: Sendable {
    let postgres: PostgresClient

    static let columns = """
        sink_id, name, type, url, array_to_json(sites)::text AS sites, array_to_json(event_types)::text AS types,
        array_to_json(event_names)::text AS names, secret_file, allow_private_network, settings::text AS settings,
        disabled_at IS NULL AS enabled, created_at, updated_at
        """

    static func sink(_ row: PostgresRow) throws -> Sink? {
        guard let id = try row.int("sink_id"), let name = try row.string("name"),
              let type = SinkType(rawValue: try row.string("type") ?? "") else { return nil }
        func array(_ column: String) throws -> [JSONValue] {
            guard let text = try row.string(column), case .array(let items)? = try? JSONValue.parse(Array(text.utf8)) else { return [] }
            return items
        }
        let settings = try row.string("settings").flatMap { try? JSONValue.parse(Array($0.utf8)) }
        return Sink(id: id, name: name, type: type, url: try row.string("url") ?? "",
                    sites: try array("sites").compactMap { if case .int(let n) = $0 { n } else { nil } },
                    eventTypes: try array("types").compactMap(\.stringValue),
                    eventNames: try array("names").compactMap(\.stringValue),
                    secretFile: try row.string("secret_file"), allowPrivateNetwork: try row.bool("allow_private_network") ?? false,
                    settings: Sink.Settings(json: settings), enabled: try row.bool("enabled") ?? false,
                    createdAt: try row.date("created_at"), updatedAt: try row.date("updated_at"))
    }

    func list() async throws -> [Sink] {
        try await postgres.query("SELECT \(Self.columns) FROM forwarder.sinks ORDER BY sink_id").rows.compactMap(Self.sink)
    }

    /// The sink with this id or name.
    func find(_ idOrName: String) async throws -> Sink? {
        let rows: [PostgresRow]
        if let id = Int64(idOrName) {
            rows = try await postgres.query("SELECT \(Self.columns) FROM forwarder.sinks WHERE sink_id = $1 OR name = $2",
                                            [id, idOrName]).rows
        } else {
            rows = try await postgres.query("SELECT \(Self.columns) FROM forwarder.sinks WHERE name = $1", [idOrName]).rows
        }
        return try rows.first.flatMap(Self.sink)
    }

    func add(_ sink: Sink) async throws -> Int64 {
        let row = try await postgres.query("""
            INSERT INTO forwarder.sinks (name, type, url, sites, event_types, event_names, secret_file,
                                         allow_private_network, settings)
            VALUES ($1, $2, $3, $4::bigint[], $5::text[], $6::text[], $7, $8, $9::jsonb) RETURNING sink_id
            """, [sink.name, sink.type.rawValue, sink.url, PostgresArray.ints(sink.sites), PostgresArray.text(sink.eventTypes),
                  PostgresArray.text(sink.eventNames), sink.secretFile, sink.allowPrivateNetwork,
                  sink.settings.jsonValue.jsonText]).first
        guard let id = try row?.int("sink_id") else { throw DeliveryError("the sink was not stored") }
        return id
    }

    func update(_ sink: Sink) async throws {
        try await postgres.query("""
            UPDATE forwarder.sinks SET name = $2, url = $3, sites = $4::bigint[], event_types = $5::text[],
                   event_names = $6::text[], secret_file = $7, allow_private_network = $8, settings = $9::jsonb,
                   updated_at = now()
            WHERE sink_id = $1
            """, [sink.id, sink.name, sink.url, PostgresArray.ints(sink.sites), PostgresArray.text(sink.eventTypes),
                  PostgresArray.text(sink.eventNames), sink.secretFile, sink.allowPrivateNetwork,
                  sink.settings.jsonValue.jsonText])
    }

    func setEnabled(_ id: Int64, _ enabled: Bool) async throws {
        try await postgres.query("""
            UPDATE forwarder.sinks SET disabled_at = CASE WHEN $2 THEN NULL ELSE coalesce(disabled_at, now()) END,
                   updated_at = now() WHERE sink_id = $1
            """, [id, enabled])
    }

    /// Deletes the sink and its parked retries; returns the number of retries dropped.
    /// Delivered marks, the attempt log and dead letters stay (for their retention).
    func remove(_ id: Int64) async throws -> Int {
        try await postgres.withTransaction { tx in
            let retries = try await tx.query("DELETE FROM forwarder.retries WHERE sink_id = $1", [id]).affectedRows
            try await tx.query("DELETE FROM forwarder.sinks WHERE sink_id = $1", [id])
            return retries
        }
    }

    /// The sink's parked retries: groups and events.
    func retryCounts(_ id: Int64) async throws -> (groups: Int, events: Int) {
        let row = try await postgres.query(
            "SELECT count(*) AS g, coalesce(sum(event_count), 0)::bigint AS e FROM forwarder.retries WHERE sink_id = $1", [id]).first
        return (Int(try row?.int("g") ?? 0), Int(try row?.int("e") ?? 0))
    }
}

/// A failure of the forwarder's own machinery (not of a sink).
struct DeliveryError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
