import Foundation
import TributaryModels

extension JSONValue {
    /// The value with NUL characters in strings and keys replaced by U+FFFD: PostgreSQL's
    /// `jsonb` and `text` refuse NUL, and one such event must not fail its batch.
    func withoutNUL() -> JSONValue {
        switch self {
        case .string(let s): return .string(s.withoutNUL())
        case .array(let a): return .array(a.map { $0.withoutNUL() })
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o { out[k.withoutNUL()] = v.withoutNUL() }
            return .object(out)
        default: return self
        }
    }
}

extension String {
    /// Whether this JSON text could hold a NUL once parsed: a NUL byte, or a `\u0000`
    /// escape. `false` is certain; `true` may be a false alarm (`\\u0000`, an escaped
    /// backslash before `u0000`), which only costs a needless replacement pass.
    var mayHoldNUL: Bool {
        var copy = self
        return copy.withUTF8 { bytes in
            // memchr, not a loop over the bytes: this reads every raw batch's whole payload.
            guard let base = bytes.baseAddress else { return false }
            if memchr(base, 0, bytes.count) != nil { return true }
            var from = 0
            while from < bytes.count, let found = memchr(base + from, 92, bytes.count - from) {
                let i = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                if i + 5 < bytes.count, bytes[i + 1] == 117, bytes[i + 2] == 48, bytes[i + 3] == 48,
                   bytes[i + 4] == 48, bytes[i + 5] == 48 {
                    return true
                }
                from = i + 1
            }
            return false
        }
    }

    func withoutNUL() -> String {
        // memchr over the contiguous bytes: `utf8.contains` went through the generic
        // sequence, a byte at a time, for each of every stored event's text columns.
        var copy = self
        let holdsNUL = copy.withUTF8 { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
        return holdsNUL ? replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : self
    }
}
