import Foundation
import Synchronization
import Yams

/// Browser, OS and device of a user agent, by the uap-core rules (`regexes.yaml`, as
/// Debian's `uap-core` package installs it), with results cached per distinct user agent.
public final class UserAgentParser: Sendable {
    /// What a user agent says about the client.
    public struct Client: Sendable, Hashable {
        public var browser: String
        public var browserVersion: String?
        public var os: String
        public var osVersion: String?
        /// `desktop`, `mobile`, `tablet` or `bot`.
        public var deviceType: String
        public var isBot: Bool
    }

    struct Rule: @unchecked Sendable {
        // NSRegularExpression is immutable and documented thread-safe for matching.
        let regex: NSRegularExpression
        let replacements: [String: String]
        /// Texts every match contains (ASCII, lowercased; see ``RegexLiterals``): a user
        /// agent without one of them cannot match, and the regex is not run.
        let literals: [RegexLiterals.Clause]
    }

    private let browsers: [Rule]
    private let systems: [Rule]
    private let devices: [Rule]
    private let cacheLimit: Int
    private let prefilter: Bool
    private let cache = Mutex<[String: Client]>([:])

    /// A file that is not a readable uap-core `regexes.yaml`.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Loads and compiles the rules in `path` (rules ICU cannot compile are skipped).
    /// With `prefilter` (the default), a rule whose required literal text (``RegexLiterals``)
    /// a user agent lacks is skipped without running its regex: the same results, faster.
    public init(path: String, cacheLimit: Int = 10_000, prefilter: Bool = true) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LoadError(description: "cannot read the uap-core rules \(path); install Debian's uap-core or set hydration.userAgent.regexes")
        }
        guard let root = try? Yams.load(yaml: text) as? [String: Any] else {
            throw LoadError(description: "\(path) is not a uap-core regexes.yaml")
        }
        func rules(_ key: String) -> [Rule] {
            (root[key] as? [[String: Any]] ?? []).compactMap { entry in
                guard let pattern = entry["regex"] as? String else { return nil }
                let options: NSRegularExpression.Options = (entry["regex_flag"] as? String) == "i" ? [.caseInsensitive] : []
                guard let regex = try? NSRegularExpression(pattern: pattern, options: options) else { return nil }
                var replacements: [String: String] = [:]
                for (k, v) in entry where k.hasSuffix("_replacement") { replacements[k] = "\(v)" }
                return Rule(regex: regex, replacements: replacements,
                            literals: prefilter ? RegexLiterals.required(pattern) : [])
            }
        }
        browsers = rules("user_agent_parsers")
        systems = rules("os_parsers")
        devices = rules("device_parsers")
        guard !browsers.isEmpty, !systems.isEmpty else {
            throw LoadError(description: "\(path) holds no user agent or OS rules")
        }
        self.cacheLimit = cacheLimit
        self.prefilter = prefilter
    }

    /// How many rules have a literal requirement (are skipped for a user agent without it).
    var prefilteredRules: Int {
        (browsers + systems + devices).filter { !$0.literals.isEmpty }.count
    }

    /// Parses (or recalls) a user agent.
    public func parse(_ userAgent: String) -> Client {
        if let cached = cache.withLock({ $0[userAgent] }) { return cached }
        let client = evaluate(String(userAgent.prefix(1_024)))
        cache.withLock { cache in
            if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[userAgent] = client
        }
        return client
    }

    private func evaluate(_ ua: String) -> Client {
        // The literal prefilter holds for ASCII text (a case-insensitive regex could match
        // a non-ASCII character to an ASCII one); anything else runs every regex.
        let lowered = prefilter && ua.utf8.allSatisfy { $0 < 128 } ? RegexLiterals.asciiLowercased(ua.utf8) : nil
        let browser = first(browsers, in: ua, lowered: lowered, keys: ("family_replacement", "v1_replacement", "v2_replacement"))
        let os = first(systems, in: ua, lowered: lowered, keys: ("os_replacement", "os_v1_replacement", "os_v2_replacement"))
        let device = first(devices, in: ua, lowered: lowered, keys: ("device_replacement", "brand_replacement", "model_replacement"))
        let deviceFamily = device?.0 ?? "Other"
        let isBot = deviceFamily == "Spider"
        let osName = os?.0 ?? "Other"
        let lower = ua.lowercased()
        let deviceType: String
        if isBot {
            deviceType = "bot"
        } else if deviceFamily == "iPad" || lower.contains("tablet") || (osName == "Android" && !lower.contains("mobile")) {
            deviceType = "tablet"
        } else if ["iOS", "Android", "Windows Phone", "BlackBerry OS"].contains(osName) || lower.contains("mobile") {
            deviceType = "mobile"
        } else {
            deviceType = "desktop"
        }
        return Client(browser: browser?.0 ?? "Other", browserVersion: browser?.1, os: osName, osVersion: os?.1,
                      deviceType: deviceType, isBot: isBot)
    }

    /// The first rule that matches: (name, "major[.minor]") with `$n` replacements applied.
    private func first(_ rules: [Rule], in ua: String, lowered: [UInt8]?,
                       keys: (name: String, major: String, minor: String)) -> (String, String?)? {
        let range = NSRange(ua.startIndex..., in: ua)
        for rule in rules {
            if let lowered, !rule.literals.isEmpty, !RegexLiterals.subject(lowered, satisfies: rule.literals) { continue }
            guard let match = rule.regex.firstMatch(in: ua, range: range) else { continue }
            func group(_ i: Int) -> String? {
                guard i < match.numberOfRanges, let r = Range(match.range(at: i), in: ua), !r.isEmpty else { return nil }
                return String(ua[r])
            }
            func fill(_ template: String?, default index: Int) -> String? {
                guard let template else { return group(index) }
                var out = template
                for i in (1...9).reversed() where out.contains("$\(i)") {
                    out = out.replacingOccurrences(of: "$\(i)", with: group(i) ?? "")
                }
                let trimmed = out.trimmingCharacters(in: .whitespaces)
                return trimmed.isEmpty ? nil : trimmed
            }
            guard let name = fill(rule.replacements[keys.name], default: 1) else { continue }
            let major = fill(rule.replacements[keys.major], default: 2)
            let minor = fill(rule.replacements[keys.minor], default: 3)
            let version = major.map { m in minor.map { "\(m).\($0)" } ?? m }
            return (name, version)
        }
        return nil
    }
}
