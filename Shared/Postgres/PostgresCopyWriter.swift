import Foundation

/// Builds the data of a `COPY … FROM STDIN (FORMAT binary)`: no escaping, and about a
/// third cheaper for the server than text COPY.
///
/// ```swift
/// var writer = PostgresCopyWriter()
/// writer.beginRow(columns: 3)
/// writer.append(int: 42); writer.append(text: "a"); writer.append(jsonb: "{}")
/// try await connection.copy("COPY t (id, name, doc) FROM STDIN (FORMAT binary)", data: writer.finish())
/// ```
/// The caller must append values matching the column types exactly.
public struct PostgresCopyWriter: Sendable {
    private(set) var buffer: [UInt8]
    /// The rows appended so far.
    public private(set) var rowCount = 0

    public init(reservingCapacity capacity: Int = 64 * 1024) {
        buffer = []
        buffer.reserveCapacity(capacity)
        buffer.append(contentsOf: Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        appendInt32(0)  // flags
        appendInt32(0)  // header extension length
    }

    /// Starts a row of `columns` fields.
    public mutating func beginRow(columns: Int) {
        appendInt16(Int16(columns))
        rowCount += 1
    }

    public mutating func appendNull() { appendInt32(-1) }

    /// A `bigint` field.
    public mutating func append(int value: Int64) {
        appendInt32(8)
        withUnsafeBytes(of: value.bigEndian) { buffer.append(contentsOf: $0) }
    }

    /// An `integer` field.
    public mutating func append(int32 value: Int32) {
        appendInt32(4)
        appendInt32(value)
    }

    /// A `double precision` field.
    public mutating func append(double value: Double) {
        appendInt32(8)
        withUnsafeBytes(of: value.bitPattern.bigEndian) { buffer.append(contentsOf: $0) }
    }

    public mutating func append(bool value: Bool) {
        appendInt32(1)
        buffer.append(value ? 1 : 0)
    }

    /// A `text` field (must not contain NUL: PostgreSQL rejects it, failing the COPY).
    public mutating func append(text value: String) {
        var value = value
        value.withUTF8 { bytes in
            appendInt32(Int32(bytes.count))
            buffer.append(contentsOf: bytes)
        }
    }

    /// A `bytea` field: any bytes.
    public mutating func append(bytes value: some Collection<UInt8>) {
        appendInt32(Int32(value.count))
        buffer.append(contentsOf: value)
    }

    /// A `jsonb` field from the UTF-8 bytes of JSON text.
    public mutating func append(jsonbBytes bytes: [UInt8]) {
        appendInt32(Int32(bytes.count + 1))
        buffer.append(1)
        buffer.append(contentsOf: bytes)
    }

    /// A `jsonb` field from JSON text (binary jsonb is a version byte then the text).
    public mutating func append(jsonb value: String) {
        var value = value
        value.withUTF8 { bytes in
            appendInt32(Int32(bytes.count + 1))
            buffer.append(1)
            buffer.append(contentsOf: bytes)
        }
    }

    /// A `timestamptz` field: microseconds since 2000-01-01 UTC.
    public mutating func append(timestamp value: Date) {
        let micros = Int64(((value.timeIntervalSince1970 - 946_684_800) * 1_000_000).rounded())
        appendInt32(8)
        withUnsafeBytes(of: micros.bigEndian) { buffer.append(contentsOf: $0) }
    }

    /// The finished data, with the trailer.
    public consuming func finish() -> [UInt8] {
        appendInt16(-1)
        return buffer
    }

    private mutating func appendInt32(_ v: Int32) {
        withUnsafeBytes(of: v.bigEndian) { buffer.append(contentsOf: $0) }
    }

    private mutating func appendInt16(_ v: Int16) {
        withUnsafeBytes(of: v.bigEndian) { buffer.append(contentsOf: $0) }
    }
}
