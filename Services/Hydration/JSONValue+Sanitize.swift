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
    func withoutNUL() -> String {
        // utf8.contains is a byte scan; Foundation's contains(_:) goes through NSString.
        utf8.contains(0) ? replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : self
    }
}
