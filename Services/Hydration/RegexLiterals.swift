#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The literal texts a regular expression's every match must contain, so that a cheap
/// substring test can rule a pattern out before the regex engine runs (most of uap-core's
/// 1,100 rules never match a given user agent, and each costs a full ICU search).
///
/// The requirement is a list of clauses, each a list of texts of which a match contains
/// at least one (a literal run is a clause of one text; an alternation gives one clause
/// holding a text from each branch). The analysis is conservative: a clause is listed
/// only when every match of the pattern satisfies it, whatever the case (texts are ASCII,
/// lowercased; compare them with an ASCII-lowercased subject). A construct it does not
/// model (inline flags, `\Q…\E`, numeric escapes, backreferences, nested sets) gives no
/// clauses, and so never a skip.
enum RegexLiterals {
    /// Texts of which a match contains at least one.
    typealias Clause = [[UInt8]]

    /// The required clauses of `pattern` (empty: nothing is known, always run the regex).
    static func required(_ pattern: String) -> [Clause] {
        var parser = Parser(pattern: Array(pattern.utf8))
        guard let clauses = parser.sequence(), parser.index == parser.pattern.count else { return [] }
        return clauses
    }

    /// Whether `subject` (ASCII-lowercased) satisfies every clause.
    static func subject(_ subject: [UInt8], satisfies clauses: [Clause]) -> Bool {
        subject.withUnsafeBufferPointer { s in
            clauses.allSatisfy { clause in
                clause.contains { text in text.withUnsafeBufferPointer { t in contains(s, t) } }
            }
        }
    }

    private static func contains(_ s: UnsafeBufferPointer<UInt8>, _ t: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !t.isEmpty else { return true }
        guard s.count >= t.count, var at = s.baseAddress, let needle = t.baseAddress else { return false }
        // The first byte found by memchr (vectorised), the rest compared by memcmp.
        var remaining = s.count
        while remaining >= t.count {
            guard let hit = memchr(at, Int32(needle.pointee), remaining - t.count + 1) else { return false }
            let found = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self))
            if memcmp(found, needle, t.count) == 0 { return true }
            remaining -= (found - at) + 1
            at = found + 1
        }
        return false
    }

    /// `bytes` with ASCII letters lowercased.
    static func asciiLowercased(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        bytes.map { (65...90).contains($0) ? $0 + 32 : $0 }
    }

    private struct Parser {
        let pattern: [UInt8]
        var index = 0

        /// Parses a sequence up to a `)` or the end; returns its required clauses, `nil` if
        /// it is not understood.
        mutating func sequence() -> [Clause]? {
            var branches: [[Clause]] = []
            var result: [Clause] = []
            var run: [UInt8] = []
            func flush() {
                if !run.isEmpty { result.append([run]) }
                run = []
            }
            while index < pattern.count, pattern[index] != UInt8(ascii: ")") {
                let c = pattern[index]
                var literal: UInt8?
                var group: [Clause]?
                switch c {
                case UInt8(ascii: "|"):
                    index += 1
                    flush()
                    branches.append(result)
                    result = []
                    continue
                case UInt8(ascii: "("):
                    guard let inner = parseGroup() else { return nil }
                    group = inner
                case UInt8(ascii: "["):
                    guard let letter = parseClass() else { return nil }
                    literal = letter
                case UInt8(ascii: "\\"):
                    guard index + 1 < pattern.count else { return nil }
                    let e = pattern[index + 1]
                    index += 2
                    if isAlphanumeric(e) {
                        // Classes and anchors (\d \w \s \b …) match no fixed text; numeric
                        // and named escapes and backreferences are not modelled.
                        guard Array("dDwWsSbBAzZGhHvVRX".utf8).contains(e) else { return nil }
                    } else if e < 128 {
                        literal = e
                    }
                case UInt8(ascii: "?"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "{"):
                    return nil
                default:
                    index += 1
                    if c < 128, c != UInt8(ascii: "."), c != UInt8(ascii: "^"), c != UInt8(ascii: "$") {
                        literal = c
                    }
                }
                guard let (optional, repeated) = quantifier() else { return nil }
                if optional {
                    flush()
                    continue
                }
                if let group {
                    flush()
                    result += group
                } else if let literal {
                    run.append(RegexLiterals.asciiLowercased(CollectionOfOne(literal))[0])
                    if repeated { flush() }
                } else {
                    flush()
                }
            }
            flush()
            guard !branches.isEmpty else { return result }
            branches.append(result)
            // A match follows one branch, so it satisfies that branch's every clause: one
            // clause of each (its most selective) joined is required of the alternation.
            var joined: Clause = []
            for branch in branches {
                guard let best = branch.max(by: { score($0) < score($1) }) else { return [] }
                joined += best
            }
            return [joined]
        }

        /// How selective a clause is: longer shortest text first, then fewer texts.
        func score(_ clause: Clause) -> (Int, Int) {
            (clause.map(\.count).min() ?? 0, -clause.count)
        }

        /// A group at `(`: its required runs (none for a lookaround), or `nil`.
        mutating func parseGroup() -> [Clause]? {
            index += 1
            var lookaround = false
            if index < pattern.count, pattern[index] == UInt8(ascii: "?") {
                guard index + 1 < pattern.count else { return nil }
                switch pattern[index + 1] {
                case UInt8(ascii: ":"): index += 2
                case UInt8(ascii: "="), UInt8(ascii: "!"): index += 2; lookaround = true
                case UInt8(ascii: "<"):
                    guard index + 2 < pattern.count,
                          pattern[index + 2] == UInt8(ascii: "=") || pattern[index + 2] == UInt8(ascii: "!") else { return nil }
                    index += 3
                    lookaround = true
                default: return nil
                }
            }
            guard let inner = sequence(), index < pattern.count, pattern[index] == UInt8(ascii: ")") else { return nil }
            index += 1
            return lookaround ? [] : inner
        }

        /// Reads a character class `[…]`: the letter it stands for when it holds only
        /// the cases of one ASCII letter (`[Bb]`), else `.some(nil)` (no fixed text); `nil` if it is
        /// unterminated or nested.
        mutating func parseClass() -> UInt8?? {
            index += 1
            var negated = false
            if index < pattern.count, pattern[index] == UInt8(ascii: "^") { index += 1; negated = true }
            var members: [UInt8] = []
            var plain = !negated
            if index < pattern.count, pattern[index] == UInt8(ascii: "]") { index += 1; members.append(UInt8(ascii: "]")) }
            while index < pattern.count {
                switch pattern[index] {
                case UInt8(ascii: "\\"): index += 2; plain = false
                case UInt8(ascii: "["): return nil
                case UInt8(ascii: "]"):
                    index += 1
                    let letters = Set(RegexLiterals.asciiLowercased(members))
                    guard plain, letters.count == 1, let letter = letters.first, (97...122).contains(letter) else {
                        return .some(nil)
                    }
                    return letter
                case UInt8(ascii: "-"): index += 1; plain = false
                default: members.append(pattern[index]); index += 1
                }
            }
            return nil
        }

        /// Reads a quantifier after an atom: (may the atom be absent, may it repeat);
        /// `nil` for a malformed bound.
        mutating func quantifier() -> (Bool, Bool)? {
            guard index < pattern.count else { return (false, false) }
            var result: (Bool, Bool)
            switch pattern[index] {
            case UInt8(ascii: "?"): result = (true, false); index += 1
            case UInt8(ascii: "*"): result = (true, true); index += 1
            case UInt8(ascii: "+"): result = (false, true); index += 1
            case UInt8(ascii: "{"):
                index += 1
                var minimum = 0
                var digits = 0
                while index < pattern.count, (48...57).contains(pattern[index]) {
                    minimum = minimum * 10 + Int(pattern[index] - 48)
                    digits += 1
                    index += 1
                }
                guard digits > 0 else { return nil }
                while index < pattern.count, pattern[index] != UInt8(ascii: "}") { index += 1 }
                guard index < pattern.count else { return nil }
                index += 1
                result = (minimum == 0, true)
            default: return (false, false)
            }
            // A lazy or possessive form (`??`, `*+`, …) means the same for what must appear.
            if index < pattern.count, pattern[index] == UInt8(ascii: "?") || pattern[index] == UInt8(ascii: "+") { index += 1 }
            return result
        }

        func isAlphanumeric(_ c: UInt8) -> Bool {
            (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c)
        }
    }
}
