/// A forward reader over JSON text, for callers that know the shape they expect and
/// want some members as typed fields rather than a ``JSONValue`` tree: each object's
/// members are handed over one by one (no dictionary is built for the object itself),
/// and each member's value is read as a tree, as a string, or skipped (checked, not built).
///
/// Valid only inside ``read(_:_:)``, which also checks that nothing follows the value.
public struct JSONReader {
    var parser: FastJSONParser
    /// The nesting depth of the value about to be read (the top-level value is at 0).
    var depth = 0

    /// Runs `body` with a reader at the start of `bytes`; throws if `body` leaves anything
    /// but whitespace after the value it read.
    public static func read<R>(_ bytes: [UInt8], _ body: (inout JSONReader) throws(JSONParseError) -> R) throws(JSONParseError) -> R {
        try bytes.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            var reader = JSONReader(parser: FastJSONParser(bytes: buffer))
            let result = try body(&reader)
            reader.parser.skipWhitespace()
            guard reader.parser.index == buffer.count else { throw reader.parser.fail() }
            return result
        }
    }

    /// The byte offset of the next value (after whitespace).
    public mutating func offset() -> Int {
        parser.skipWhitespace()
        return parser.index
    }

    /// The first byte of the next value (after whitespace): `{`, `[`, `"`, a digit…; `nil` at the end.
    public mutating func peek() -> UInt8? {
        parser.skipWhitespace()
        return parser.index < parser.bytes.count ? parser.bytes[parser.index] : nil
    }

    /// Reads the next value as a tree.
    public mutating func value() throws(JSONParseError) -> JSONValue {
        try parser.value(depth: depth)
    }

    /// Checks the next value and moves past it without building it.
    public mutating func skip() throws(JSONParseError) {
        try parser.skipValue(depth: depth)
    }

    /// Reads an object, calling `member` with each key; `member` must read or skip the
    /// member's value. Throws if the next value is not an object.
    public mutating func members(_ member: (inout JSONReader, String) throws(JSONParseError) -> Void) throws(JSONParseError) {
        guard depth < 511, peek() == 123 else { throw parser.fail() }
        parser.index += 1
        if peek() == 125 { parser.index += 1; return }
        depth += 1
        while true {
            guard peek() == 34 else { throw parser.fail() }
            let key = try parser.string()
            guard peek() == 58 else { throw parser.fail() }
            parser.index += 1
            try member(&self, key)
            switch peek() {
            case 44: parser.index += 1
            case 125: parser.index += 1; depth -= 1; return
            default: throw parser.fail()
            }
        }
    }

    /// Reads an array, calling `element` for each element; `element` must read or skip it.
    /// Throws if the next value is not an array.
    public mutating func elements(_ element: (inout JSONReader) throws(JSONParseError) -> Void) throws(JSONParseError) {
        guard depth < 511, peek() == 91 else { throw parser.fail() }
        parser.index += 1
        if peek() == 93 { parser.index += 1; return }
        depth += 1
        while true {
            try element(&self)
            switch peek() {
            case 44: parser.index += 1
            case 93: parser.index += 1; depth -= 1; return
            default: throw parser.fail()
            }
        }
    }

    /// The byte offset just after the last value read.
    public var position: Int { parser.index }
}
