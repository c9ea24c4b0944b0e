/// The parts of a page URL that attribution reads, taken apart without Foundation for the
/// common form `http(s)://host[:port][/path][?query][#fragment]` written in plain ASCII
/// without percent escapes, user info or IP-literal hosts. Anything else gives `nil`, and
/// the caller reads it with `URLComponents` (a test checks the two agree on the common form).
struct SimpleURL: Equatable {
    /// The host as written.
    var host: String
    /// The path as written (empty when the URL has none).
    var path: String
    /// The query's `name[=value]` items in order (empty without a query).
    var queryItems: [Item]

    struct Item: Equatable {
        var name: String
        var value: String?
    }

    /// Reads `url`, or `nil` when it is not of the simple form.
    static func parse(_ url: String) -> SimpleURL? {
        var url = url
        return url.withUTF8 { bytes -> SimpleURL? in
            var i: Int
            if bytes.starts(with: Self.https) {
                i = Self.https.count
            } else if bytes.starts(with: Self.http) {
                i = Self.http.count
            } else {
                return nil
            }
            var fragments = 0
            for b in bytes {
                guard b < 128, Self.allowed[Int(b)] else { return nil }
                if b == UInt8(ascii: "#") { fragments += 1 }
            }
            // A second `#` is not allowed in a fragment.
            guard fragments <= 1 else { return nil }
            func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
            func isEnd(_ b: UInt8) -> Bool { b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: "#") }
            let hostStart = i
            while i < bytes.count, !isEnd(bytes[i]), bytes[i] != UInt8(ascii: ":") { i += 1 }
            let hostEnd = i
            guard hostEnd > hostStart else { return nil }
            if i < bytes.count, bytes[i] == UInt8(ascii: ":") {
                i += 1
                let portStart = i
                while i < bytes.count, !isEnd(bytes[i]) {
                    guard (48...57).contains(bytes[i]) else { return nil }
                    i += 1
                }
                guard i > portStart else { return nil }
            }
            let pathStart = i
            while i < bytes.count, bytes[i] != UInt8(ascii: "?"), bytes[i] != UInt8(ascii: "#") { i += 1 }
            var result = SimpleURL(host: text(hostStart..<hostEnd), path: text(pathStart..<i), queryItems: [])
            guard i < bytes.count, bytes[i] == UInt8(ascii: "?") else { return result }
            i += 1
            var start = i
            var equals: Int?
            while true {
                let atEnd = i == bytes.count || bytes[i] == UInt8(ascii: "#")
                if atEnd || bytes[i] == UInt8(ascii: "&") {
                    if let e = equals {
                        result.queryItems.append(Item(name: text(start..<e), value: text((e + 1)..<i)))
                    } else {
                        result.queryItems.append(Item(name: text(start..<i), value: nil))
                    }
                    if atEnd { break }
                    start = i + 1
                    equals = nil
                } else if bytes[i] == UInt8(ascii: "="), equals == nil {
                    equals = i
                }
                i += 1
            }
            return result
        }
    }

    private static let http = Array("http://".utf8)
    private static let https = Array("https://".utf8)

    /// RFC 3986's unreserved, sub-delims and the gen-delims `:/?#` (not `%`, `@`, `[`, `]`).
    private static let allowed: [Bool] = {
        var table = [Bool](repeating: false, count: 128)
        for b in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:/?#".utf8 {
            table[Int(b)] = true
        }
        return table
    }()
}
