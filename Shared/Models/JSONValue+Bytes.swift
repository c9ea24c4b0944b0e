import Foundation

/// A JSON text that is not valid, with the byte offset where it went wrong.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let offset: Int
    public var description: String { "invalid JSON at byte \(offset)" }
}

extension JSONValue {
    /// Parses JSON text directly into a value: much faster than `JSONDecoder` for
    /// free-form values, which must otherwise try each type in turn.
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        try parse(bytes, skippingMembers: [], atDepth: -1)
    }

    /// Parses JSON text, leaving out the members named in `keys` of every object at
    /// nesting depth `depth` (the top-level value is at depth 0; the elements of a
    /// top-level array at 1): their values are checked and skipped without being built,
    /// for a reader that needs only some fields of large messages.
    public static func parse(_ bytes: some Collection<UInt8>, skippingMembers keys: Set<String>,
                             atDepth depth: Int) throws(JSONParseError) -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(JSONParseError) in
            var parser = FastJSONParser(bytes: buffer)
            parser.skippedKeys = keys
            parser.skipDepth = depth
            let value = try parser.value(depth: 0)
            parser.skipWhitespace()
            guard parser.index == buffer.count else { throw JSONParseError(offset: parser.index) }
            return value
        }
    }

    /// Serialises the value as compact JSON (object keys sorted, so equal values give equal bytes).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    /// The compact JSON text of the value.
    public var jsonText: String { String(decoding: serialized(), as: UTF8.self) }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: [110, 117, 108, 108])
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            // Swift's shortest round-trip form ("1500.0", "0.25", "1e+20") is valid JSON.
            out.append(contentsOf: (d.isFinite ? "\(d)" : "null").utf8)
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let a):
            out.append(91)
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(44) }
                v.write(into: &out)
            }
            out.append(93)
        case .object(let o):
            out.append(123)
            for (i, member) in o.sorted(by: { $0.key < $1.key }).enumerated() {
                if i > 0 { out.append(44) }
                Self.writeString(member.key, into: &out)
                out.append(58)
                member.value.write(into: &out)
            }
            out.append(125)
        }
    }

    /// Whether any byte of `bytes` is below 0x20, `"` or `\\`: eight bytes at a time (the
    /// classic "has a byte less than n" and "has a zero byte" tests on 64-bit words, exact
    /// for whether one exists), then byte by byte. Every string of every event written as
    /// JSON goes through this; almost none needs an escape.
    @inline(__always)
    static func mayNeedEscape(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        while i + 8 <= bytes.count {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            let quote = x ^ (ones &* 34)
            let backslash = x ^ (ones &* 92)
            let found = ((x &- ones &* 32) & ~x) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
            if found & highs != 0 { return true }
            i += 8
        }
        while i < bytes.count {
            let b = bytes[i]
            if b < 32 || b == 34 || b == 92 { return true }
            i += 1
        }
        return false
    }

    /// Appends `s` as a JSON string: `"`, `\\` and control characters escaped. One pass counts
    /// the escapes; a string with none (most) is copied in one go, others written through a
    /// buffer of the exact final size (a raw batch's payload holds hundreds of quotes).
    static func writeString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.makeContiguousUTF8()
        s.withUTF8 { utf8 in
            if !mayNeedEscape(utf8) {
                out.append(34)
                out.append(contentsOf: utf8)
                out.append(34)
                return
            }
            var extra = 0
            for b in utf8 where b < 32 || b == 34 || b == 92 {
                extra += (b == 34 || b == 92 || b == 10 || b == 13 || b == 9) ? 1 : 5
            }
            if extra == 0 {
                out.append(34)
                out.append(contentsOf: utf8)
                out.append(34)
                return
            }
            let base = out.count
            out.append(contentsOf: repeatElement(0, count: utf8.count + extra + 2))
            out.withUnsafeMutableBufferPointer { buffer in
                let hex: StaticString = "0123456789abcdef"
                let digits = hex.utf8Start
                var o = base
                buffer[o] = 34
                o += 1
                for b in utf8 {
                    guard b < 32 || b == 34 || b == 92 else {
                        buffer[o] = b
                        o += 1
                        continue
                    }
                    buffer[o] = 92
                    switch b {
                    case 34, 92: buffer[o + 1] = b; o += 2
                    case 10: buffer[o + 1] = 110; o += 2
                    case 13: buffer[o + 1] = 114; o += 2
                    case 9: buffer[o + 1] = 116; o += 2
                    default:
                        buffer[o + 1] = 117
                        buffer[o + 2] = 48
                        buffer[o + 3] = 48
                        buffer[o + 4] = digits[Int(b >> 4)]
                        buffer[o + 5] = digits[Int(b & 15)]
                        o += 6
                    }
                }
                buffer[o] = 34
            }
        }
    }
}

struct FastJSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    /// Members left out of the objects at `skipDepth` (their values are only checked).
    var skippedKeys: Set<String> = []
    var skipDepth = -1
    /// The members of the objects being parsed (a stack shared by nested objects), so each
    /// object's dictionary is made once at its final size instead of growing member by member.
    var members: [(key: String, value: JSONValue)] = []

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        members.reserveCapacity(32)
    }

    func fail() -> JSONParseError { JSONParseError(offset: index) }

    mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 32 || bytes[index] == 10 || bytes[index] == 13 || bytes[index] == 9 {
            index += 1
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < 512 else { throw fail() }
        skipWhitespace()
        guard index < bytes.count else { throw fail() }
        switch bytes[index] {
        case 123:
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == 125 { index += 1; return .object([:]) }
            let base = members.count
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == 34 else { throw fail() }
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == 58 else { throw fail() }
                index += 1
                if depth == skipDepth, skippedKeys.contains(key) {
                    try skipValue(depth: depth + 1)
                } else {
                    let member = try value(depth: depth + 1)
                    members.append((key, member))
                }
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == 44 { index += 1; continue }
                guard bytes[index] == 125 else { throw fail() }
                index += 1
                var object = [String: JSONValue](minimumCapacity: members.count - base)
                for i in base..<members.count { object[members[i].key] = members[i].value }  // the last of a repeated key wins
                members.removeSubrange(base...)
                return .object(object)
            }
        case 91:
            index += 1
            var array: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == 93 { index += 1; return .array(array) }
            while true {
                array.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == 44 { index += 1; continue }
                guard bytes[index] == 93 else { throw fail() }
                index += 1
                return .array(array)
            }
        case 34: return .string(try string())
        case 116: try literal([116, 114, 117, 101]); return .bool(true)
        case 102: try literal([102, 97, 108, 115, 101]); return .bool(false)
        case 110: try literal([110, 117, 108, 108]); return .null
        default: return try number()
        }
    }

    /// Checks one value and moves past it without building it.
    mutating func skipValue(depth: Int) throws(JSONParseError) {
        guard depth < 512 else { throw fail() }
        skipWhitespace()
        guard index < bytes.count else { throw fail() }
        switch bytes[index] {
        case 123, 91:
            let close: UInt8 = bytes[index] == 123 ? 125 : 93
            index += 1
            skipWhitespace()
            if index < bytes.count, bytes[index] == close { index += 1; return }
            while true {
                if close == 125 {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == 34 else { throw fail() }
                    try skipString()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == 58 else { throw fail() }
                    index += 1
                }
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw fail() }
                if bytes[index] == 44 { index += 1; continue }
                guard bytes[index] == close else { throw fail() }
                index += 1
                return
            }
        case 34: try skipString()
        case 116: try literal([116, 114, 117, 101])
        case 102: try literal([102, 97, 108, 115, 101])
        case 110: try literal([110, 117, 108, 108])
        default: _ = try number()
        }
    }

    /// Moves past a string, checking its escapes.
    mutating func skipString() throws(JSONParseError) {
        index += 1
        while index < bytes.count {
            switch bytes[index] {
            case 34:
                index += 1
                return
            case 92:
                guard index + 1 < bytes.count else { throw fail() }
                switch bytes[index + 1] {
                case 34, 92, 47, 98, 102, 110, 114, 116: index += 2
                case 117:
                    index += 2
                    _ = try hex4()
                default: throw fail()
                }
            default: index += 1
            }
        }
        throw fail()
    }

    mutating func literal(_ word: [UInt8]) throws(JSONParseError) {
        guard index + word.count <= bytes.count else { throw fail() }
        for (i, b) in word.enumerated() where bytes[index + i] != b { throw fail() }
        index += word.count
    }

    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = index
        var isInteger = true
        while index < bytes.count {
            let b = bytes[index]
            if (b >= 48 && b <= 57) || b == 45 { index += 1 }
            else if b == 46 || b == 101 || b == 69 || b == 43 { isInteger = false; index += 1 }
            else { break }
        }
        guard index > start else { throw fail() }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        if isInteger, let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { throw JSONParseError(offset: start) }
        return .double(d)
    }

    mutating func string() throws(JSONParseError) -> String {
        index += 1
        let start = index
        while index < bytes.count, bytes[index] != 34, bytes[index] != 92 { index += 1 }
        guard index < bytes.count else { throw fail() }
        if bytes[index] == 34 {
            let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            index += 1
            return s
        }
        // Escapes: the string is checked to its closing quote first (so the decoding below
        // cannot fail), then decoded straight into the new string's storage, which the text
        // up to the quote bounds (an escape never decodes longer than itself). Appending to
        // an array run by run and copying it into a String cost twice as much on a raw
        // batch's payload, a string of thousands of escaped quotes.
        let firstEscape = index
        index = start - 1
        try skipString()
        let end = index - 1
        let source = bytes
        return String(unsafeUninitializedCapacity: end - start) { out in
            var o = 0
            func put(_ b: UInt8) { out[o] = b; o += 1 }
            func hex(_ at: Int) -> UInt32 {
                var v: UInt32 = 0
                for c in source[at..<(at + 4)] {
                    v = v << 4 | UInt32(c <= 57 ? c - 48 : (c | 32) - 87)
                }
                return v
            }
            func copy(_ from: Int, _ to: Int) {
                guard to > from else { return }
                UnsafeMutableRawPointer(out.baseAddress! + o).copyMemory(from: source.baseAddress! + from, byteCount: to - from)
                o += to - from
            }
            copy(start, firstEscape)
            var i = firstEscape
            while i < end {
                // The run up to the next backslash, copied at once.
                let run = i
                if let found = memchr(source.baseAddress! + i, 92, end - i) {
                    i = (source.baseAddress! as UnsafePointer<UInt8>).distance(to: found.assumingMemoryBound(to: UInt8.self))
                } else {
                    i = end
                }
                copy(run, i)
                guard i < end else { break }
                let e = source[i + 1]
                i += 2
                switch e {
                case 98: put(8)
                case 102: put(12)
                case 110: put(10)
                case 114: put(13)
                case 116: put(9)
                case 117:
                    var scalar = hex(i)
                    i += 4
                    // A surrogate pair makes one scalar; a lone surrogate is U+FFFD (and an
                    // escape after a lone high one is read on its own).
                    if (0xD800...0xDBFF).contains(scalar), i + 1 < end, source[i] == 92, source[i + 1] == 117,
                       case let low = hex(i + 2), (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                    for b in (Unicode.Scalar(scalar) ?? "\u{FFFD}").utf8 { put(b) }
                default: put(e)  // ", \\ and /
                }
            }
            return o
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail() }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 65...70: d = UInt32(c - 55)
            case 97...102: d = UInt32(c - 87)
            default: throw fail()
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }
}
