import Foundation

/// A strict, allocation-light JSON validator that also reports the byte ranges the
/// collector needs: the top-level members (to find `batch`, `writeKey`, `type`) and the
/// elements of the top-level `batch` array (to count events and check their sizes).
///
/// It checks RFC 8259 syntax, UTF-8 (overlongs, surrogates, truncation), control
/// characters in strings, nesting depth and number size, and never looks inside events
/// beyond that: per-event processing belongs to hydration.
struct JSONShape {
    /// A top-level member: key (decoded), the byte range from the key's opening quote to
    /// the end of the value, and the value's range.
    struct Member {
        var key: String
        var span: Range<Int>
        var value: Range<Int>
        var valueKind: Kind
    }

    enum Kind: Equatable { case object, array, string, number, bool, null }

    /// Why a body is not acceptable JSON.
    struct Failure: Error, Equatable {
        var message: String
        var offset: Int
    }

    var members: [Member] = []
    /// For a top-level `batch` array: each element's range and kind.
    var batchElements: [(range: Range<Int>, kind: Kind)] = []

    /// Limits the scanner enforces.
    struct Limits {
        var maximumDepth = 64
        var maximumNumberLength = 64
    }

    /// Scans `bytes`; the top level must be an object.
    static func scan(_ bytes: UnsafeBufferPointer<UInt8>, limits: Limits = Limits()) throws(Failure) -> JSONShape {
        var scanner = Scanner(bytes: bytes, limits: limits)
        var shape = JSONShape()
        scanner.skipWhitespace()
        guard scanner.index < bytes.count else { throw Failure(message: "the body is empty", offset: 0) }
        guard bytes[scanner.index] == UInt8(ascii: "{") else {
            throw Failure(message: "the body must be a JSON object", offset: scanner.index)
        }
        try scanner.object(depth: 1) { key, span, value, kind, elements in
            shape.members.append(Member(key: key, span: span, value: value, valueKind: kind))
            if key == "batch", let elements { shape.batchElements = elements }
        }
        scanner.skipWhitespace()
        guard scanner.index == bytes.count else {
            throw Failure(message: "unexpected data after the JSON object", offset: scanner.index)
        }
        return shape
    }

    /// The member named `key`, if present (the last one, as most parsers keep).
    func member(_ key: String) -> Member? {
        members.last { $0.key == key }
    }
}

private struct Scanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let limits: JSONShape.Limits
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONShape.Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    typealias Failure = JSONShape.Failure

    func fail(_ message: String) -> Failure { Failure(message: message, offset: index) }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of JSON: expected \(what)") }
        guard bytes[index] == byte else { throw fail("expected \(what)") }
        index += 1
    }

    /// Scans an object; for the top level (depth 1) calls `member` with each member.
    mutating func object(
        depth: Int,
        member: ((String, Range<Int>, Range<Int>, JSONShape.Kind, [(range: Range<Int>, kind: JSONShape.Kind)]?) -> Void)? = nil
    ) throws(Failure) {
        guard depth <= limits.maximumDepth else { throw fail("JSON nested deeper than \(limits.maximumDepth) levels") }
        index += 1  // {
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of JSON inside an object") }
            guard bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
            let keyStart = index
            let key = try string(decode: member != nil)
            try expect(UInt8(ascii: ":"), "':' after a member name")
            skipWhitespace()
            let valueStart = index
            var elements: [(range: Range<Int>, kind: JSONShape.Kind)]?
            let kind: JSONShape.Kind
            if member != nil, key == "batch", index < bytes.count, bytes[index] == UInt8(ascii: "[") {
                var collected: [(range: Range<Int>, kind: JSONShape.Kind)] = []
                try array(depth: depth + 1) { range, kind in collected.append((range, kind)) }
                elements = collected
                kind = .array
            } else {
                kind = try value(depth: depth + 1)
            }
            member?(key, keyStart..<index, valueStart..<index, kind, elements)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of JSON inside an object") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in an object") }
            index += 1
            return
        }
    }

    mutating func array(depth: Int,
                        element: ((Range<Int>, JSONShape.Kind) -> Void)? = nil) throws(Failure) {
        guard depth <= limits.maximumDepth else { throw fail("JSON nested deeper than \(limits.maximumDepth) levels") }
        index += 1  // [
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let start = index
            let kind = try value(depth: depth + 1)
            element?(start..<index, kind)
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of JSON inside an array") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in an array") }
            index += 1
            return
        }
    }

    mutating func value(depth: Int) throws(Failure) -> JSONShape.Kind {
        skipWhitespace()
        guard index < bytes.count else { throw fail("unexpected end of JSON: expected a value") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            try object(depth: depth)
            return .object
        case UInt8(ascii: "["):
            try array(depth: depth)
            return .array
        case UInt8(ascii: "\""):
            _ = try string(decode: false)
            return .string
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try number()
            return .number
        default:
            throw fail("expected a JSON value")
        }
    }

    mutating func literal(_ word: StaticString) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end of JSON in a literal") }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] {
            throw fail("invalid literal")
        }
        index += count
    }

    mutating func number() throws(Failure) {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw fail("unexpected end of JSON in a number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if isDigit(bytes[index]) {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        } else {
            throw fail("invalid number")
        }
        var hasExponent = false
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number: digits expected after '.'") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            hasExponent = true
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number: digits expected in exponent") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let length = index - start
        guard length <= limits.maximumNumberLength else {
            throw Failure(message: "number longer than \(limits.maximumNumberLength) characters", offset: start)
        }
        if hasExponent {
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let value = Double(text), value.isFinite else {
                throw Failure(message: "number out of range", offset: start)
            }
        }
    }

    func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Scans a string (index at the opening quote); returns its decoded value when asked.
    mutating func string(decode: Bool) throws(Failure) -> String {
        index += 1
        let start = index
        var decoded: [UInt8]? = nil
        while true {
            guard index < bytes.count else { throw fail("unexpected end of JSON inside a string") }
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "\""):
                let result: String
                if decode {
                    result = decoded.map { String(decoding: $0, as: UTF8.self) }
                        ?? String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                } else {
                    result = ""
                }
                index += 1
                return result
            case UInt8(ascii: "\\"):
                if decode && decoded == nil { decoded = Array(bytes[start..<index]) }
                index += 1
                guard index < bytes.count else { throw fail("unexpected end of JSON in an escape") }
                let e = bytes[index]
                index += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                    decoded?.append(e)
                case UInt8(ascii: "b"): decoded?.append(0x08)
                case UInt8(ascii: "f"): decoded?.append(0x0C)
                case UInt8(ascii: "n"): decoded?.append(0x0A)
                case UInt8(ascii: "r"): decoded?.append(0x0D)
                case UInt8(ascii: "t"): decoded?.append(0x09)
                case UInt8(ascii: "u"):
                    let scalar = try unicodeEscape()
                    if decoded != nil { decoded!.append(contentsOf: Array(String(Character(scalar)).utf8)) }
                default:
                    index -= 1
                    throw fail("invalid escape in a string")
                }
            case 0x00...0x1F:
                throw fail("unescaped control character in a string")
            case 0x00...0x7F:
                // A run of plain ASCII (most of every string) is checked in a tight loop and
                // copied, when decoding, in one go.
                var end = index + 1
                while end < bytes.count {
                    let c = bytes[end]
                    if c < 0x20 || c >= 0x80 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") { break }
                    end += 1
                }
                decoded?.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
                index = end
            default:
                let length = try utf8Sequence()
                decoded?.append(contentsOf: bytes[(index - length)..<index])
            }
        }
    }

    /// Reads `XXXX` after `\u` (and a following low surrogate escape if needed).
    mutating func unicodeEscape() throws(Failure) -> Unicode.Scalar {
        func hex4() throws(Failure) -> UInt32 {
            guard index + 4 <= bytes.count else { throw fail("unexpected end of JSON in a \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x37)
                case 0x61...0x66: d = UInt32(c - 0x57)
                default: throw fail("invalid \\u escape")
                }
                v = v << 4 | d
                index += 1
            }
            return v
        }
        let first = try hex4()
        if (0xD800...0xDBFF).contains(first) {
            guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw fail("unpaired surrogate in a \\u escape")
            }
            index += 2
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw fail("unpaired surrogate in a \\u escape") }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!
        }
        guard let scalar = Unicode.Scalar(first) else { throw fail("unpaired surrogate in a \\u escape") }
        return scalar
    }

    /// Validates one multi-byte UTF-8 sequence at `index` and moves past it.
    mutating func utf8Sequence() throws(Failure) -> Int {
        let b0 = bytes[index]
        let length: Int
        var minimum: UInt32
        var scalar: UInt32
        switch b0 {
        case 0xC2...0xDF: length = 2; minimum = 0x80; scalar = UInt32(b0 & 0x1F)
        case 0xE0...0xEF: length = 3; minimum = 0x800; scalar = UInt32(b0 & 0x0F)
        case 0xF0...0xF4: length = 4; minimum = 0x10000; scalar = UInt32(b0 & 0x07)
        default: throw fail("invalid UTF-8")
        }
        guard index + length <= bytes.count else { throw fail("invalid UTF-8: truncated sequence") }
        for i in 1..<length {
            let b = bytes[index + i]
            guard b & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
            scalar = scalar << 6 | UInt32(b & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else {
            throw fail("invalid UTF-8")
        }
        index += length
        return length
    }
}
