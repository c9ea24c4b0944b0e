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
        var memo = Memo()
        return parse(url: url, referrer: referrer, memo: &memo)
    }

    /// What parsing repeats within a turn: a visitor's events on one page, and a handful of
    /// referrers. Bounded by the events of one turn (it is dropped after the turn).
    struct Memo {
        /// The last page URL parsed and its parse. Consecutive events of a batch often share
        /// their page; a table of every page URL of a turn cost more in hashing and growth
        /// than the parses it saved (most of a turn's pages are distinct).
        var lastPage: (url: String, page: (attribution: PageAttribution, host: String?)?)?
        /// A referrer's lowercased host and its named source; `nil` for no usable host.
        var referrers: [String: (host: String, source: String)?] = [:]
    }

    /// ``parse(url:referrer:)``, remembering each distinct URL's and referrer's parse in `memo`.
    static func parse(url: String?, referrer: String?, memo: inout Memo) -> PageAttribution {
        var result = PageAttribution()
        var pageHost: String?
        if let url {
            let page: (attribution: PageAttribution, host: String?)?
            if let last = memo.lastPage, last.url == url {
                page = last.page
            } else {
                page = parsePage(url)
                memo.lastPage = (url, page)
            }
            if let page { (result, pageHost) = page }
        }
        if let referrer, !referrer.isEmpty {
            let known: (host: String, source: String)?
            if let remembered = memo.referrers[referrer] {
                known = remembered
            } else {
                known = URLComponents(string: referrer).flatMap(\.host).map { $0.lowercased() }.flatMap {
                    $0.isEmpty ? nil : ($0, source(forHost: $0))
                }
                memo.referrers[referrer] = known
            }
            if let known {
                result.referrer = referrer.clipped(2_048)
                if known.host != pageHost { result.referrerSource = known.source }
            }
        }
        return result
    }

    /// The page URL's part of the attribution and its lowercased host; `nil` if it is not a
    /// URL. A URL of the common simple form is taken apart by ``SimpleURL`` (several times
    /// faster); `foundationOnly` makes every URL go through `URLComponents` (for tests).
    static func parsePage(_ url: String, foundationOnly: Bool = false) -> (attribution: PageAttribution, host: String?)? {
        let host: String?
        let path: String
        let items: [(name: String, value: String?)]
        if !foundationOnly, let simple = SimpleURL.parse(url) {
            (host, path) = (simple.host, simple.path)
            items = simple.queryItems.map { ($0.name, $0.value) }
        } else {
            guard let page = URLComponents(string: url) else { return nil }
            (host, path) = (page.host, page.percentEncodedPath)
            items = (page.queryItems ?? []).map { ($0.name, $0.value) }
        }
        var result = PageAttribution()
        result.url = url.clipped(2_048)
        result.path = path.isEmpty ? "/" : path
        for item in items {
            guard let value = item.value, !value.isEmpty else { continue }
            let clipped = value.clipped(200)
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
        return (result, host?.lowercased())
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
