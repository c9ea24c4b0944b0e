import Foundation

/// A small, fast, seedable random number generator (SplitMix64), so a run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Picks indexes 0..<n with probability proportional to 1 / (rank + 1)^s: a few big sites
/// and a long tail of small ones (or to given weights).
struct Zipf {
    let cumulative: [Double]

    init(count: Int, exponent: Double = 1.1) {
        var total = 0.0
        var c: [Double] = []
        for rank in 0..<max(count, 1) {
            total += 1 / pow(Double(rank + 1), exponent)
            c.append(total)
        }
        cumulative = c.map { $0 / total }
    }

    /// Picks index i with probability weights[i] / Σ weights.
    init(weights: [Double]) {
        var total = 0.0
        var c: [Double] = []
        for w in weights {
            total += max(w, 0)
            c.append(total)
        }
        cumulative = total > 0 ? c.map { $0 / total } : [1]
    }

    func sample(_ rng: inout SplitMix64) -> Int {
        let u = Double.random(in: 0..<1, using: &rng)
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

/// One visitor of a site: an anonymous id, an address and a browser. Each site's
/// visitors have distinct (address, user agent) pairs, so each is one visitor hash.
struct Visitor: Sendable {
    var anonymousID: String
    var userID: String?
    var ip: String
    var userAgent: String
}

/// Realistic ingredients: user agents from uap-core's own test cases (people, not
/// spiders), pages, referrers, UTM tags, event names.
enum Ingredients {
    static let paths = ["/", "/pricing", "/docs", "/docs/getting-started", "/docs/api", "/blog", "/blog/launch",
                        "/blog/2026/11/scaling-postgres", "/about", "/careers", "/contact", "/signup", "/login",
                        "/features/analytics", "/features/webhooks", "/changelog", "/customers", "/security", "/terms",
                        "/privacy"]
    static let referrers = ["", "", "", "https://www.google.com/", "https://www.bing.com/search?q=tributary",
                            "https://duckduckgo.com/", "https://news.ycombinator.com/item?id=4242",
                            "https://www.reddit.com/r/selfhosted/", "https://t.co/abc123", "https://github.com/",
                            "https://www.linkedin.com/", "https://example-partner.com/blog/post"]
    static let utm: [[String: String]] = [[:], [:], [:],
                                          ["utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "november"],
                                          ["utm_source": "twitter", "utm_medium": "social", "utm_campaign": "launch"],
                                          ["utm_source": "google", "utm_medium": "cpc", "utm_campaign": "brand"]]
    static let eventNames = ["Signed Up", "Checkout Started", "Order Completed", "Video Played", "Search", "Download",
                             "Plan Upgraded", "Invite Sent"]
    static let metricNames = ["api.latency", "queue.depth", "jobs.processed", "cache.hit_ratio"]
    static let fallbackAgents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    ]

    /// Up to `limit` user agents of people from uap-core's device test cases (family not
    /// `Spider`, no bot words), or a built-in handful when the file is not there.
    static func userAgents(limit: Int = 300, path: String = "/usr/share/uap-core/tests/test_device.yaml") -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return fallbackAgents }
        var agents: [String] = []
        var pending: String?
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("- user_agent_string:") {
                pending = unquote(String(t.dropFirst("- user_agent_string:".count)))
            } else if t.hasPrefix("family:"), let ua = pending {
                let family = unquote(String(t.dropFirst("family:".count)))
                let lower = ua.lowercased()
                if family != "Spider" && ua.hasPrefix("Mozilla/5.0") && ua.count < 300
                    && !["bot", "spider", "crawl", "slurp", "preview", "http", "fetch"].contains(where: lower.contains) {
                    agents.append(ua)
                }
                pending = nil
            }
        }
        guard agents.count >= 20 else { return fallbackAgents }
        let step = max(1, agents.count / limit)
        return Array(stride(from: 0, to: agents.count, by: step).map { agents[$0] }.prefix(limit))
    }

    static func unquote(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespaces)
        if t.count >= 2, let f = t.first, f == "'" || f == "\"", t.last == f { t = String(t.dropFirst().dropLast()) }
        return t.replacingOccurrences(of: "''", with: "'")
    }
}
