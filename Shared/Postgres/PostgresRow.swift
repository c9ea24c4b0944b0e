import Foundation

/// The rows of a result, copied out of libpq (text format) into Swift values.
public struct PostgresResult: Sendable {
    /// Column names, in order.
    public let columns: [String]
    public let rows: [PostgresRow]
    /// The number of rows the statement affected (`INSERT`, `UPDATE`, `DELETE`, `COPY`).
    public let affectedRows: Int

    public init(columns: [String], rows: [PostgresRow], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// The first row, if any.
    public var first: PostgresRow? { rows.first }
}

/// One row of a ``PostgresResult``; cells are looked up by column name.
public struct PostgresRow: Sendable {
    let index: [String: Int]
    /// Each cell's text-format bytes, or `nil` for SQL NULL.
    public let cells: [[UInt8]?]

    init(index: [String: Int], cells: [[UInt8]?]) {
        self.index = index
        self.cells = cells
    }

    private func cell(_ column: String) throws(PostgresError) -> [UInt8]? {
        guard let i = index[column] else { throw PostgresError(.unexpectedResult) }
        return cells[i]
    }

    /// Whether the cell is SQL NULL (throws if there is no such column).
    public func isNull(_ column: String) throws(PostgresError) -> Bool { try cell(column) == nil }

    public func string(_ column: String) throws(PostgresError) -> String? {
        try cell(column).map { String(decoding: $0, as: UTF8.self) }
    }

    public func int(_ column: String) throws(PostgresError) -> Int64? {
        guard let text = try string(column) else { return nil }
        guard let value = Int64(text) else { throw PostgresError(.unexpectedResult) }
        return value
    }

    public func double(_ column: String) throws(PostgresError) -> Double? {
        guard let text = try string(column) else { return nil }
        guard let value = Double(text) else { throw PostgresError(.unexpectedResult) }
        return value
    }

    public func bool(_ column: String) throws(PostgresError) -> Bool? {
        guard let text = try string(column) else { return nil }
        return text == "t" || text == "true"
    }

    public func date(_ column: String) throws(PostgresError) -> Date? {
        guard let text = try string(column) else { return nil }
        guard let value = PostgresTime.parse(text) else { throw PostgresError(.unexpectedResult) }
        return value
    }

    /// A `bytea` cell, decoded from PostgreSQL's hex text format (`\x…`).
    public func bytes(_ column: String) throws(PostgresError) -> [UInt8]? {
        guard let raw = try cell(column) else { return nil }
        guard raw.count >= 2, raw[0] == UInt8(ascii: "\\"), raw[1] == UInt8(ascii: "x"), raw.count % 2 == 0 else {
            throw PostgresError(.unexpectedResult)
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            case 65...70: return c - 55
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity((raw.count - 2) / 2)
        var i = 2
        while i < raw.count {
            guard let hi = nibble(raw[i]), let lo = nibble(raw[i + 1]) else { throw PostgresError(.unexpectedResult) }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
