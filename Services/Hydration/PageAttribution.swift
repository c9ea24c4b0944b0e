import Foundation

/// Where a page view came from: the page's URL and path, the referrer's host and a
/// named source (search engines and social networks by name), UTM fields and click ids.
public struct PageAttribution: Sendable, Hashable {
    public var url: String?
    public var path: String?
    public var referrer: String?
    /// `Google`, `Facebook`, … for known hosts, else the referrer's host without `www.`;
    /// `nil` for direct traffic and internal navigation.
    public var referrerSource: String?
    public var utmSource: String?
    public var utmMedium: String?
    public var utmCampaign: String?
    public var utmTerm: String?
    public var utmContent: String?
    /// `gclid`, `fbclid`, `msclkid`, `dclid`, `ttclid`, `twclid`, `li_fat_id` when present.
    public var clickIDs: [String: String] = [:]

    public init() {}

    /// Reads the page URL and referrer (either may be missing or malformed).
    public static func parse(url: String?, referrer: String?) -> PageAttribution {
        var result = PageAttribution()
        let page = url.flatMap { URLComponents(string: $0) }
        if let url, page != nil { result.url = String(url.prefix(2_048)) }
        result.path = page.map { $0.percentEncodedPath.isEmpty ? "/" : $0.percentEncodedPath }
        for item in page?.queryItems ?? [] {
            guard let value = item.value, !value.isEmpty else { continue }
            let clipped = String(value.prefix(200))
            switch item.name.lowercased() {
            case "utm_source": result.utmSource = clipped
            case "utm_medium": result.utmMedium = clipped
            case "utm_campaign": result.utmCampaign = clipped
            case "utm_term": result.utmTerm = clipped
            case "utm_content": result.utmContent = clipped
            case let name where clickIDNames.contains(name): result.clickIDs[name] = clipped
            default: break
            }
        }
        if let referrer, !referrer.isEmpty, let components = URLComponents(string: referrer),
           let host = components.host?.lowercased(), !host.isEmpty {
            result.referrer = String(referrer.prefix(2_048))
            let pageHost = page?.host?.lowercased()
            if host != pageHost {
                result.referrerSource = source(forHost: host)
            }
        }
        return result
    }

    static let clickIDNames: Set<String> = ["gclid", "fbclid", "msclkid", "dclid", "ttclid", "twclid", "li_fat_id"]

    /// Known referrer hosts: a host matches if it equals or ends with `.` + the domain;
    /// `*` matches any top-level domain (google.de, google.co.uk).
    static let knownSources: [(domain: String, name: String)] = [
        ("google.*", "Google"), ("bing.com", "Bing"), ("duckduckgo.com", "DuckDuckGo"), ("yahoo.*", "Yahoo!"),
        ("baidu.com", "Baidu"), ("yandex.*", "Yandex"), ("ecosia.org", "Ecosia"), ("search.brave.com", "Brave"),
        ("startpage.com", "Startpage"), ("qwant.com", "Qwant"), ("naver.com", "Naver"),
        ("facebook.com", "Facebook"), ("fb.com", "Facebook"), ("instagram.com", "Instagram"),
        ("t.co", "Twitter"), ("twitter.com", "Twitter"), ("x.com", "Twitter"), ("linkedin.com", "LinkedIn"),
        ("lnkd.in", "LinkedIn"), ("reddit.com", "Reddit"), ("youtube.com", "YouTube"), ("pinterest.*", "Pinterest"),
        ("tiktok.com", "TikTok"), ("news.ycombinator.com", "Hacker News"), ("github.com", "GitHub"),
        ("mastodon.social", "Mastodon"), ("bsky.app", "Bluesky"), ("threads.net", "Threads"),
        ("chatgpt.com", "ChatGPT"), ("perplexity.ai", "Perplexity"),
    ]

    static func source(forHost host: String) -> String {
        let labels = host.split(separator: ".")
        for (domain, name) in knownSources {
            if domain.hasSuffix(".*") {
                let base = String(domain.dropLast(2))
                // google.com, google.de, google.co.uk, www.google.fr, …
                if let i = labels.firstIndex(where: { $0 == base }), labels.count - i <= 3, i < labels.count - 1 {
                    return name
                }
            } else if host == domain || host.hasSuffix("." + domain) {
                return name
            }
        }
        return host.hasPrefix("www.") ? String(host.dropFirst(4)) : host
    }
}
