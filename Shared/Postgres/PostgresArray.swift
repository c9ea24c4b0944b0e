import Foundation

/// PostgreSQL array literals for `$n::text[]`, `$n::bigint[]` (and `date[]`,
/// `timestamptz[]`) parameters, so a whole set of rows travels as one parameter per column.
public enum PostgresArray {
    /// Every element quoted and escaped; NUL (which PostgreSQL cannot store) becomes U+FFFD.
    /// `nil` elements are SQL NULL.
    public static func text(_ values: [String?]) -> String {
        var out: [UInt8] = [123]
        for (i, value) in values.enumerated() {
            if i > 0 { out.append(44) }
            guard let value else {
                out.append(contentsOf: [78, 85, 76, 76])
                continue
            }
            out.append(34)
            for b in value.utf8 {
                switch b {
                case 0: out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                case 34, 92: out.append(92); out.append(b)
                default: out.append(b)
                }
            }
            out.append(34)
        }
        out.append(125)
        return String(decoding: out, as: UTF8.self)
    }

    public static func text(_ values: [String]) -> String {
        text(values.map { Optional($0) })
    }

    public static func ints<T: BinaryInteger>(_ values: [T]) -> String {
        "{" + values.map { String($0) }.joined(separator: ",") + "}"
    }
}

/// Arrays in PostgreSQL's binary format (`array_recv`): each element length-prefixed, so
/// the server neither scans for quotes nor parses numbers and timestamps. A statement that
/// unnests thousands of elements spends about a third of its time parsing them as text.
extension PostgresArray {
    /// A `text[]`; `nil` elements are SQL NULL, NUL (which PostgreSQL cannot store) becomes U+FFFD.
    public static func binary(text values: [String?]) -> PostgresValue {
        var out = header(count: values.count, hasNull: values.contains(nil), element: 25, capacity: values.count * 24)
        for value in values {
            guard let value else {
                append(Int32(-1), to: &out)
                continue
            }
            let start = out.count
            append(Int32(0), to: &out)
            for b in value.utf8 {
                if b == 0 { out.append(contentsOf: [0xEF, 0xBF, 0xBD]) } else { out.append(b) }
            }
            let length = UInt32(out.count - start - 4)
            out[start] = UInt8(length >> 24)
            out[start + 1] = UInt8((length >> 16) & 0xFF)
            out[start + 2] = UInt8((length >> 8) & 0xFF)
            out[start + 3] = UInt8(length & 0xFF)
        }
        return .binary(oid: 1009, bytes: out)
    }

    public static func binary(text values: [String]) -> PostgresValue {
        binary(text: values.map { Optional($0) })
    }

    /// A `bigint[]`.
    public static func binary(int8 values: [Int64]) -> PostgresValue {
        var out = header(count: values.count, hasNull: false, element: 20, capacity: values.count * 12)
        for v in values {
            append(Int32(8), to: &out)
            append(UInt64(bitPattern: v), to: &out)
        }
        return .binary(oid: 1016, bytes: out)
    }

    /// A `boolean[]`.
    public static func binary(bool values: [Bool]) -> PostgresValue {
        var out = header(count: values.count, hasNull: false, element: 16, capacity: values.count * 5)
        for v in values {
            append(Int32(1), to: &out)
            out.append(v ? 1 : 0)
        }
        return .binary(oid: 1000, bytes: out)
    }

    /// A `timestamptz[]`, to the microsecond.
    public static func binary(timestamptz values: [Date]) -> PostgresValue {
        .binary(oid: 1185, bytes: micros(values.map { ($0.timeIntervalSince1970 * 1_000_000).rounded() }, element: 1184))
    }

    /// A `timestamp[]` (without time zone) of wall-clock times given as seconds since
    /// 1970-01-01 00:00 of that clock.
    public static func binary(timestamp seconds: [Int64]) -> PostgresValue {
        .binary(oid: 1115, bytes: micros(seconds.map { Double($0) * 1_000_000 }, element: 1114))
    }

    /// A `date[]` of days since 1970-01-01.
    public static func binary(date days: [Int32]) -> PostgresValue {
        var out = header(count: days.count, hasNull: false, element: 1082, capacity: days.count * 8)
        for d in days {
            append(Int32(4), to: &out)
            append(UInt32(bitPattern: d - postgresEpochDays), to: &out)
        }
        return .binary(oid: 1182, bytes: out)
    }

    /// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for dates and timestamps.
    private static let postgresEpochDays: Int32 = 10_957

    private static func micros(_ values: [Double], element: UInt32) -> [UInt8] {
        var out = header(count: values.count, hasNull: false, element: element, capacity: values.count * 12)
        let shift = Int64(postgresEpochDays) * 86_400_000_000
        for v in values {
            append(Int32(8), to: &out)
            append(UInt64(bitPattern: Int64(v) - shift), to: &out)
        }
        return out
    }

    /// One dimension, lower bound 1 (an empty array has no dimensions).
    private static func header(count: Int, hasNull: Bool, element: UInt32, capacity: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + capacity)
        append(UInt32(count == 0 ? 0 : 1), to: &out)
        append(UInt32(hasNull ? 1 : 0), to: &out)
        append(element, to: &out)
        if count > 0 {
            append(UInt32(count), to: &out)
            append(UInt32(1), to: &out)
        }
        return out
    }

    private static func append(_ v: Int32, to out: inout [UInt8]) { append(UInt32(bitPattern: v), to: &out) }

    private static func append(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(v >> 24))
        out.append(UInt8((v >> 16) & 0xFF))
        out.append(UInt8((v >> 8) & 0xFF))
        out.append(UInt8(v & 0xFF))
    }

    private static func append(_ v: UInt64, to out: inout [UInt8]) {
        append(UInt32(v >> 32), to: &out)
        append(UInt32(v & 0xFFFF_FFFF), to: &out)
    }
}
