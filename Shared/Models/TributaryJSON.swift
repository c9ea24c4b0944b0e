import Foundation

/// The one JSON configuration every daemon uses for queue messages, so any two
/// daemons (and any program in another language, see docs/queues.md) agree on the bytes.
///
/// Dates are ISO-8601 with milliseconds, in UTC; keys are sorted so equal messages
/// encode to equal bytes.
public enum TributaryJSON {
    /// A new encoder with the shared settings (encoders are not `Sendable`: make one per use).
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(ISO8601.format(date))
        }
        return e
    }

    /// A new decoder with the shared settings.
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = ISO8601.parse(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO-8601 date")
            }
            return date
        }
        return d
    }

    /// Encodes `value` with the shared settings.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try encoder().encode(value))
    }

    /// Decodes `T` from `bytes` with the shared settings.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        try decoder().decode(type, from: Data(bytes))
    }
}
