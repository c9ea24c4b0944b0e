import Foundation
import Testing
@testable import Hydration

@Suite("User agents: the literal prefilter of the uap-core rules")
struct UserAgentPrefilterTests {
    static let rules = "/usr/share/uap-core/regexes.yaml"

    /// The clauses of `pattern`, each as its texts joined by `|`.
    func texts(_ pattern: String) -> [String] {
        RegexLiterals.required(pattern).map { clause in
            clause.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "|")
        }
    }

    @Test("required texts: literals outside optional parts, one of each alternation's branches, lowercased", arguments: [
        (#"(Chrome)/(\d+)\.(\d+)"#, ["chrome", "/", "."]),
        ("a?b", ["b"]),
        ("ab*c", ["a", "c"]),
        ("ab+c", ["ab", "c"]),
        ("a{0,2}b", ["b"]),
        ("x{2}y", ["x", "y"]),
        ("ab|cd", ["ab|cd"]),
        ("(?:ab|cd)ef", ["ab|cd", "ef"]),
        ("(?:a|bc|)d", ["d"]),
        ("(?:Foo.Bar|Baz)", ["foo|baz"]),
        ("[Bb]ai[Dd]u", ["baidu"]),
        ("[^Bb]x", ["x"]),
        ("[A-Z]x", ["x"]),
        ("(ab)?cd", ["cd"]),
        ("[abc]def", ["def"]),
        (#"[\]x]yz"#, ["yz"]),
        (#"\.Foo\/"#, [".foo/"]),
        ("A.B", ["a", "b"]),
        ("^Foo$", ["foo"]),
        ("Foo(?=Bar)", ["foo"]),
        ("(?<!x)Foo", ["foo"]),
        (#"Foo\sBar"#, ["foo", "bar"]),
        ("ab??c", ["a", "c"]),
        // Not modelled: nothing is required, so the regex always runs.
        ("(?i)Foo", []),
        (#"\x41BC"#, []),
        (#"(a)\1"#, []),
        ("[[a-z]]x", []),
        ("(ab", []),
    ] as [(String, [String])])
    func requiredTexts(pattern: String, expected: [String]) {
        #expect(texts(pattern) == expected, "pattern \(pattern)")
    }

    /// The user agent strings of uap-core's own test files (every `step`-th one).
    static func corpus(_ file: String, step: Int) throws -> [String] {
        let text = try String(contentsOfFile: "/usr/share/uap-core/tests/\(file)", encoding: .utf8)
        var out: [String] = []
        var n = 0
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("- user_agent_string: ") else { continue }
            n += 1
            guard n % step == 0 else { continue }
            var value = String(trimmed.dropFirst("- user_agent_string: ".count))
            if value.count >= 2, let q = value.first, q == "'" || q == "\"", value.last == q {
                value = String(value.dropFirst().dropLast())
                if q == "'" { value = value.replacingOccurrences(of: "''", with: "'") }
            }
            out.append(value)
        }
        return out
    }

    @Test("gives the same browser, OS and device as running every rule, on uap-core's test user agents")
    func sameResults() throws {
        let fast = try UserAgentParser(path: Self.rules, prefilter: true)
        #expect(fast.prefilteredRules > 1_000)
        let full = try UserAgentParser(path: Self.rules, prefilter: false)
        let agents = try Self.corpus("test_ua.yaml", step: 1) + Self.corpus("test_os.yaml", step: 1)
            + Self.corpus("test_device.yaml", step: 16)
        #expect(agents.count > 2_500)
        var differences: [String] = []
        for agent in agents where fast.parse(agent) != full.parse(agent) {
            differences.append(agent)
        }
        #expect(differences.count == 0, "they differ, e.g. \(differences.prefix(3))")
    }
}
