import Foundation
import TributaryModels
import TributaryPostgres

/// One visitor on one local day: the key of an `aggregator.visitor_days` row.
struct VisitorDay: Sendable, Hashable {
    var visitor: String
    var day: Int32
}

/// Who is counted where, so unique visitors stay exact (no sketches): the memberships of
/// a turn's visitors, read in one statement and written back in one.
///
/// A membership is one visitor counted in one row (day, dim, value) of the rollups:
/// event dimensions (totals, `@hour`, page, event name, properties) with refs 1, visit
/// dimensions with the number of the visitor's visits that put them there. They are
/// stored grouped, one `aggregator.visitor_days` row per visitor and local day (a daily
/// salted hash lives a day or two), so a turn reads and writes a row per visitor instead
/// of one per membership. The site's lock makes the read-modify-write safe.
struct Memberships: Sendable {
    /// The loaded visitors' memberships, with this turn's changes.
    private(set) var refs: [Member: Int64]
    /// The visitor-days changed in this turn (written back by `save`).
    private var touched: Set<VisitorDay> = []

    init(refs: [Member: Int64] = [:]) {
        self.refs = refs
    }

    /// Every stored membership of `visitors`, on every day kept.
    static func load(_ db: PostgresConnection, site: Int64, visitors: Set<String>) async throws -> Memberships {
        guard !visitors.isEmpty else { return Memberships() }
        let rows = try await db.query("""
            SELECT visitor, (day - date '1970-01-01') AS day, members FROM aggregator.visitor_days
            WHERE site_id = $1 AND visitor = ANY($2::text[])
            """, [site, PostgresArray.binary(text: Array(visitors))]).rows
        var refs: [Member: Int64] = [:]
        for row in rows {
            guard let visitor = try row.string("visitor"), let day = try row.int("day"),
                  let text = try row.string("members") else { continue }
            try decode(text, into: &refs, visitor: visitor, day: Int32(day))
        }
        return Memberships(refs: refs)
    }

    subscript(_ m: Member) -> Int64 { refs[m] ?? 0 }

    /// Whether the visitor is counted in the row.
    func contains(_ m: Member) -> Bool { (refs[m] ?? 0) > 0 }

    /// Sets a membership's refs; at 0 or below it is removed.
    mutating func set(_ m: Member, _ n: Int64) {
        refs[m] = n > 0 ? n : nil
        touched.insert(VisitorDay(visitor: m.visitor, day: m.key.day))
    }

    /// Writes the changed visitor-days back: rows left without memberships are deleted.
    func save(_ tx: PostgresConnection, site: Int64) async throws {
        guard !touched.isEmpty else { return }
        var rows: [VisitorDay: [Member: Int64]] = [:]
        for day in touched { rows[day] = [:] }
        for (m, n) in refs {
            let key = VisitorDay(visitor: m.visitor, day: m.key.day)
            if rows[key] != nil { rows[key]![m] = n }
        }
        try await Self.delete(tx, site: site, rows.filter { $0.value.isEmpty }.map(\.key))
        try await Self.write(tx, site: site, rows.filter { !$0.value.isEmpty })
    }

    /// Stores whole visitor-days (replacing stored ones).
    static func write(_ tx: PostgresConnection, site: Int64, _ rows: [VisitorDay: [Member: Int64]]) async throws {
        guard !rows.isEmpty else { return }
        let keys = Array(rows.keys)
        try await tx.query("""
            INSERT INTO aggregator.visitor_days (site_id, visitor, day, members)
            SELECT $1, * FROM unnest($2::text[], $3::date[], $4::text[])
            ON CONFLICT (site_id, visitor, day) DO UPDATE SET members = EXCLUDED.members
            """, [site, PostgresArray.binary(text: keys.map(\.visitor)), PostgresArray.binary(date: keys.map(\.day)),
                  PostgresArray.binary(text: keys.map { encode(rows[$0]!) })])
    }

    /// Stores memberships of whole days (as the rebuild computes them), grouped by visitor.
    static func write(_ tx: PostgresConnection, site: Int64, members: [Member: Int64]) async throws {
        var rows: [VisitorDay: [Member: Int64]] = [:]
        for (m, n) in members where n > 0 { rows[VisitorDay(visitor: m.visitor, day: m.key.day), default: [:]][m] = n }
        try await write(tx, site: site, rows)
    }

    static func delete(_ tx: PostgresConnection, site: Int64, _ keys: [VisitorDay]) async throws {
        guard !keys.isEmpty else { return }
        try await tx.query("""
            DELETE FROM aggregator.visitor_days v USING unnest($2::text[], $3::date[]) AS k(visitor, day)
            WHERE v.site_id = $1 AND v.visitor = k.visitor AND v.day = k.day
            """, [site, PostgresArray.binary(text: keys.map(\.visitor)), PostgresArray.binary(date: keys.map(\.day))])
    }

    /// A visitor-day's memberships as stored: `{"dim": {"value": refs, …}, …}` (JSON text,
    /// keys sorted, so equal sets give equal text).
    static func encode(_ members: [Member: Int64]) -> String {
        var byDim: [String: [String: JSONValue]] = [:]
        for (m, n) in members { byDim[m.key.dim, default: [:]][m.key.value] = .int(n) }
        return JSONValue.object(byDim.mapValues { .object($0) }).jsonText
    }

    /// Adds a stored visitor-day's memberships to `refs`.
    static func decode(_ text: String, into refs: inout [Member: Int64], visitor: String, day: Int32) throws {
        guard case .object(let dims) = try JSONValue.parse(Array(text.utf8)) else {
            throw DecodeError(text: text)
        }
        for (dim, values) in dims {
            guard case .object(let values) = values else { throw DecodeError(text: text) }
            for (value, n) in values {
                guard case .int(let n) = n, n > 0 else { throw DecodeError(text: text) }
                refs[Member(key: DayKey(day: day, dim: dim, value: value), visitor: visitor)] = n
            }
        }
    }

    struct DecodeError: Error, CustomStringConvertible {
        var text: String
        var description: String { "aggregator.visitor_days holds memberships that are not {dim: {value: refs}}: \(text.prefix(200))" }
    }
}
