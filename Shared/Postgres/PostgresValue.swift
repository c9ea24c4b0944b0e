import Foundation

/// A query parameter. Parameters are always sent separately from the SQL text
/// (`PQexecParams`), so a value can never change what a statement does.
public enum PostgresValue: Sendable, Hashable {
    case null
    case text(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    /// Sent in binary format: any bytes, including NUL.
    case bytea([UInt8])
    case timestamp(Date)
    /// A JSON document, sent as text for a `jsonb` or `json` parameter.
    case json(String)
    /// A value already in PostgreSQL's binary format for the type `oid` (see
    /// ``PostgresArray/binary(text:)`` and its siblings).
    case binary(oid: UInt32, bytes: [UInt8])

    /// The parameter's type OID (0 lets the server infer it from the statement).
    var oid: UInt32 {
        switch self {
        case .null, .text, .json: return 0
        case .int: return 20
        case .double: return 701
        case .bool: return 16
        case .bytea: return 17
        case .timestamp: return 1184
        case .binary(let oid, _): return oid
        }
    }

    /// The bytes sent for the value, and whether they are in binary format.
    var wire: (bytes: [UInt8], binary: Bool)? {
        switch self {
        case .null: return nil
        case .text(let s), .json(let s): return (Array(s.utf8), false)
        case .int(let i): return (Array(String(i).utf8), false)
        case .double(let d): return (Array(String(d).utf8), false)
        case .bool(let b): return (Array((b ? "t" : "f").utf8), false)
        case .bytea(let b): return (b, true)
        case .timestamp(let d): return (Array(PostgresTime.format(d).utf8), false)
        case .binary(_, let bytes): return (bytes, true)
        }
    }
}

/// Swift values that can be query parameters.
public protocol PostgresEncodable: Sendable {
    var postgresValue: PostgresValue { get }
}

extension PostgresValue: PostgresEncodable { public var postgresValue: PostgresValue { self } }
extension String: PostgresEncodable { public var postgresValue: PostgresValue { .text(self) } }
extension Int: PostgresEncodable { public var postgresValue: PostgresValue { .int(Int64(self)) } }
extension Int64: PostgresEncodable { public var postgresValue: PostgresValue { .int(self) } }
extension Int32: PostgresEncodable { public var postgresValue: PostgresValue { .int(Int64(self)) } }
extension Double: PostgresEncodable { public var postgresValue: PostgresValue { .double(self) } }
extension Bool: PostgresEncodable { public var postgresValue: PostgresValue { .bool(self) } }
extension Date: PostgresEncodable { public var postgresValue: PostgresValue { .timestamp(self) } }
extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public var postgresValue: PostgresValue { self?.postgresValue ?? .null }
}
