/// A Redis reply, copied out of hiredis into Swift values.
public enum RedisValue: Sendable, Hashable {
    case null
    /// A bulk string: binary-safe bytes.
    case bulk([UInt8])
    /// A status reply such as `OK`.
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    /// An error reply inside a pipeline or a script's array; as a top-level reply of
    /// ``RedisConnection/send(_:)`` it is thrown as ``RedisError`` instead.
    case error(prefix: String)

    /// The bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulk(let b): return b
        case .status(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// The bulk or status reply as UTF-8 text.
    public var string: String? {
        bytes.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The integer of an integer reply, or of a bulk string holding a decimal integer.
    public var integer: Int64? {
        switch self {
        case .integer(let i): return i
        case .bulk: return string.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply (an empty array for `nil`).
    public var array: [RedisValue]? {
        switch self {
        case .array(let a): return a
        case .null: return []
        default: return nil
        }
    }

    public var isNull: Bool { self == .null }
}

/// A command argument: anything that turns into bytes. Arguments are always sent as
/// separate binary-safe strings (each with its length, in RESP), never interpolated into
/// a command's text.
public protocol RedisArgumentConvertible: Sendable {
    var redisArgument: [UInt8] { get }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}
extension Substring: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}
extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: [UInt8] { self }
}
extension Int: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}
extension Int64: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}
extension Double: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}
