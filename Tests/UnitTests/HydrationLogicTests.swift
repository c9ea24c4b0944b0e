import Foundation
import Testing
import TributaryModels
@testable import Hydration
import TributaryPostgres

@Suite("Hydration: validation, clocks, attribution")
struct HydrationLogicTests {
    let validator = EventValidator()

    func json(_ text: String) -> JSONValue {
        try! JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    func rule(_ text: String) -> (String, String?)? {
        do {
            _ = try validator.validate(json(text))
            return nil
        } catch {
            return (error.rule, error.field)
        }
    }

    @Test("each validation rule names its rule and field", arguments: [
        (#"[1]"#, "not_an_object", nil),
        (#"{"userId":"u"}"#, "invalid_type", "type"),
        (#"{"type":"click","userId":"u"}"#, "invalid_type", "type"),
        (#"{"type":"page"}"#, "missing_identity", "userId"),
        (#"{"type":"track","userId":"u"}"#, "missing_event_name", "event"),
        (#"{"type":"track","userId":"u","event":""}"#, "missing_event_name", "event"),
        (#"{"type":"alias","userId":"u"}"#, "missing_field", "previousId"),
        (#"{"type":"alias","previousId":"a","anonymousId":"x"}"#, "missing_field", "userId"),
        (#"{"type":"group","userId":"u"}"#, "missing_field", "groupId"),
        (#"{"type":"track","userId":["u"],"event":"e"}"#, "invalid_field_type", "userId"),
        (#"{"type":"track","userId":"u","event":"e","properties":[1]}"#, "invalid_field_type", "properties"),
        (#"{"type":"track","userId":"u","event":"e","timestamp":"yesterday"}"#, "invalid_timestamp", "timestamp"),
        (#"{"type":"track","userId":"u","event":"e","sentAt":5}"#, "invalid_timestamp", "sentAt"),
        (#"{"type":"metric","name":"m","kind":"meter","value":1}"#, "invalid_metric", "kind"),
        (#"{"type":"metric","name":"m","kind":"gauge","value":"x"}"#, "invalid_metric", "value"),
        (#"{"type":"metric","kind":"gauge","value":1}"#, "invalid_metric", "name"),
        (#"{"type":"metric","name":"m","kind":"gauge","value":1,"tags":{"a":[1]}}"#, "invalid_metric", "tags.a"),
    ] as [(String, String, String?)])
    func rules(text: String, expectedRule: String, field: String?) {
        let got = rule(text)
        #expect(got?.0 == expectedRule)
        #expect(got?.1 == field)
    }

    @Test("valid events pass, numeric ids become strings, metrics are read")
    func valid() throws {
        let track = try validator.validate(json(#"{"type":"track","userId":42,"event":"e","timestamp":"2026-11-25T10:00:00Z"}"#))
        #expect(track.userId == "42")
        let metric = try validator.validate(json(#"{"type":"metric","name":"q.depth","kind":"gauge","value":3,"tags":{"q":"h","n":1}}"#))
        #expect(metric.kind == .gauge && metric.value == 3 && metric.tags == ["q": "h", "n": "1"])
        #expect(rule(#"{"type":"identify","anonymousId":"a","traits":{"plan":"pro"}}"#) == nil)
    }

    @Test("property limits and long names are refused")
    func limits() {
        var small = ValidationLimits()
        small.maxProperties = 2
        small.maxNameLength = 5
        let strict = EventValidator(limits: small)
        #expect(throws: ValidationFailure.self) {
            try strict.validate(json(#"{"type":"track","userId":"u","event":"e","properties":{"a":1,"b":2,"c":3}}"#))
        }
        #expect(throws: ValidationFailure.self) { try strict.validate(json(#"{"type":"track","userId":"u","event":"toolong"}"#)) }
        // Limits count characters, not bytes: five two-byte letters fit, six do not.
        #expect((try? strict.validate(json(#"{"type":"track","userId":"u","event":"ééééé"}"#))) != nil)
        #expect(throws: ValidationFailure.self) { try strict.validate(json(#"{"type":"track","userId":"u","event":"éééééé"}"#)) }
        #expect("ééé".clipped(2) == "éé" && "abc".clipped(3) == "abc")
    }

    @Test("client clock skew is corrected, future times clamped, old times flagged")
    func clock() {
        let clock = EventClock(futureToleranceSeconds: 60, maximumAgeSeconds: 86_400)
        let received = ISO8601.parse("2026-11-25T12:00:00.000Z")!
        // The client's clock is 1 hour fast: it sent at 13:00:05 an event from 13:00:00.
        let (t, flags) = clock.resolve(timestamp: "2026-11-25T13:00:00.000Z", sentAt: "2026-11-25T13:00:05.000Z", receivedAt: received)
        #expect(ISO8601.format(t) == "2026-11-25T11:59:55.000Z")
        #expect(flags == ["clock_corrected"])
        let (future, f2) = clock.resolve(timestamp: "2026-11-26T12:00:00Z", sentAt: nil, receivedAt: received)
        #expect(future == received && f2 == ["future_clamped"])
        let (_, f3) = clock.resolve(timestamp: "2026-11-20T12:00:00Z", sentAt: nil, receivedAt: received)
        #expect(f3 == ["old"])
        let (none, f4) = clock.resolve(timestamp: nil, sentAt: nil, receivedAt: received)
        #expect(none == received && f4.isEmpty)
    }

    @Test("referrers are named, UTM fields and click ids read, internal navigation ignored")
    func attribution() {
        let a = PageAttribution.parse(
            url: "https://shop.example/p/1?utm_source=news&utm_medium=email&utm_campaign=bf&gclid=abc",
            referrer: "https://www.google.co.uk/search?q=shoes")
        #expect(a.path == "/p/1")
        #expect(a.referrerSource == "Google")
        #expect(a.utmSource == "news" && a.utmMedium == "email" && a.utmCampaign == "bf")
        #expect(a.clickIDs == ["gclid": "abc"])
        #expect(PageAttribution.parse(url: "https://a.example/", referrer: "https://t.co/xyz").referrerSource == "Twitter")
        #expect(PageAttribution.parse(url: "https://a.example/", referrer: "https://news.ycombinator.com/item?id=1").referrerSource == "Hacker News")
        #expect(PageAttribution.parse(url: "https://a.example/", referrer: "https://www.someblog.net/post").referrerSource == "someblog.net")
        #expect(PageAttribution.parse(url: "https://a.example/x", referrer: "https://a.example/y").referrerSource == nil)
        #expect(PageAttribution.parse(url: nil, referrer: "not a url").referrerSource == nil)
    }

    @Test("a turn's memo of page and referrer parses gives what a fresh parse gives")
    func attributionMemo() {
        let urls: [String?] = ["https://a.example/x?utm_source=s", "https://b.example/", nil, "not a url", "https://a.example/x?utm_source=s"]
        let referrers: [String?] = ["https://a.example/y", "https://www.google.de/", "", nil, "not a url", "https://a.example/y"]
        var memo = PageAttribution.Memo()
        for _ in 0..<2 {
            for url in urls {
                for referrer in referrers {
                    // Same referrer, different pages: internal for one, a source for the other.
                    #expect(PageAttribution.parse(url: url, referrer: referrer, memo: &memo)
                            == PageAttribution.parse(url: url, referrer: referrer))
                }
            }
        }
        #expect(PageAttribution.parse(url: "https://a.example/", referrer: "https://a.example/y", memo: &memo).referrerSource == nil)
        #expect(PageAttribution.parse(url: "https://b.example/", referrer: "https://a.example/y", memo: &memo).referrerSource
                == "a.example")
    }

    @Test("a batch text that could hold a NUL is told apart from one that cannot")
    func nulScan() {
        #expect(!#"{"batch":[{"a":"b"}]}"#.mayHoldNUL)
        #expect(!#"{"a":"\u00010"}"#.mayHoldNUL)
        #expect(#"{"a":"x\u0000"}"#.mayHoldNUL)
        #expect(#"\u0000"#.mayHoldNUL)
        #expect(!#"{"a":"\\\"\u000"#.mayHoldNUL)
        #expect(!#"\"#.mayHoldNUL)
        #expect(!"".mayHoldNUL)
        #expect("a\u{0}b".mayHoldNUL)
        #expect(!#"\u000"#.mayHoldNUL)
        #expect(!"".mayHoldNUL)
    }

    @Test("the visitor hash depends on salt, site, IP and user agent")
    func visitorHash() {
        let salt: [UInt8] = Array(repeating: 1, count: 32)
        let h = VisitorSalt.visitorHash(salt: salt, site: 1, ip: "203.0.113.1", userAgent: "UA")
        #expect(h.count == 32)
        #expect(h == VisitorSalt.visitorHash(salt: salt, site: 1, ip: "203.0.113.1", userAgent: "UA"))
        #expect(h != VisitorSalt.visitorHash(salt: Array(repeating: 2, count: 32), site: 1, ip: "203.0.113.1", userAgent: "UA"))
        #expect(h != VisitorSalt.visitorHash(salt: salt, site: 2, ip: "203.0.113.1", userAgent: "UA"))
        #expect(h != VisitorSalt.visitorHash(salt: salt, site: 1, ip: "203.0.113.2", userAgent: "UA"))
        #expect(VisitorSalt.day(of: ISO8601.parse("2026-11-25T23:59:59.999Z")!) == "2026-11-25")
        #expect(VisitorSalt.day(of: ISO8601.parse("2026-11-26T00:00:00.000Z")!) == "2026-11-26")
        // The last instant of a day is that day's, even where milliseconds would round up.
        let lastInstant = ISO8601.parse("2026-11-26T00:00:00.000Z")!.addingTimeInterval(-0.0001)
        #expect(VisitorSalt.day(of: lastInstant) == "2026-11-25")
        #expect(VisitorSalt.day(of: ISO8601.parse("2028-02-29T12:00:00Z")!) == "2028-02-29")
        #expect(VisitorSalt.day(of: ISO8601.parse("1969-12-31T23:59:59.5Z")!) == "1969-12-31")
    }

    @Test("text arrays are escaped for PostgreSQL")
    func arrays() {
        #expect(PostgresArray.text(["a", "b\"c", "d\\e", "f,g"]) == #"{"a","b\"c","d\\e","f,g"}"#)
    }
}
