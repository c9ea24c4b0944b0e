import Foundation
import Testing
@testable import Hydration

@Suite("Page URLs: the fast reader agrees with URLComponents")
struct SimpleURLTests {
    @Test("the common form is taken apart; anything else is left to URLComponents")
    func parts() throws {
        let url = try #require(SimpleURL.parse("https://Shop.Example:8443/p/1;v=2?utm_source=nl&b&c=&d=1=2#top"))
        #expect(url.host == "Shop.Example")
        #expect(url.path == "/p/1;v=2")
        #expect(url.queryItems == [.init(name: "utm_source", value: "nl"), .init(name: "b", value: nil),
                                   .init(name: "c", value: ""), .init(name: "d", value: "1=2")])
        #expect(SimpleURL.parse("http://a.example")?.path == "")
        for declined in ["ftp://a.example/", "https://u@a.example/", "https://[::1]/", "https://a.example/%20",
                         "https://a.example/ü", "https://a.example/a b", "https://a.example:x/", "https:///p",
                         "https://a.example/#a#b", "HTTPS://a.example/"] {
            #expect(SimpleURL.parse(declined) == nil, "\(declined)")
        }
    }

    @Test("page attribution is the same with and without the fast reader, on thousands of URL shapes")
    func sameAttribution() {
        let schemes = ["http://", "https://", "HTTP://", "ftp://", ""]
        let hosts = ["site1.example", "Site.Example", "a-b.c", "localhost", "127.0.0.1", "[::1]", "user@h.example",
                     "h.example:8080", "h.example:", "h.example:x", ""]
        let paths = ["", "/", "/p/1", "/a%20b", "/a b", "/ü", "/a;b=c", "/~x/(y)*", "//double", "/a'b!$,"]
        let queries = ["", "?", "?utm_source=nl&utm_medium=email", "?UTM_SOURCE=A&Utm_Campaign=Spring", "?a&b=",
                       "?gclid=x&fbclid=y&li_fat_id=z", "?utm_campaign=a%20b", "?utm_term=a+b", "?utm_content=1=2",
                       "?q=?/:@", "?x=\"", "?a=1&&utm_source=s", "?utm_source=&utm_medium=m", "?%zz=1"]
        let fragments = ["", "#f", "#a#b", "#a?b", "#"]
        var checked = 0
        var differences: [String] = []
        for scheme in schemes {
            for host in hosts {
                for path in paths {
                    for query in queries {
                        for fragment in fragments {
                            let url = scheme + host + path + query + fragment
                            let fast = PageAttribution.parsePage(url)
                            let slow = PageAttribution.parsePage(url, foundationOnly: true)
                            checked += 1
                            if fast?.attribution != slow?.attribution || fast?.host != slow?.host {
                                differences.append(url)
                            }
                        }
                    }
                }
            }
        }
        #expect(checked > 30_000)
        #expect(differences.count == 0, "they differ, e.g. \(differences.prefix(5))")
    }
}
