import Foundation
import Testing
@testable import TributaryModels

@Suite("Shared models")
struct ModelTests {
    @Test("queue messages round-trip through the shared JSON format with documented keys")
    func rawBatchRoundTrip() throws {
        let message = RawBatchMessage(batchID: 123, siteID: 7, receivedAt: Date(timeIntervalSince1970: 1_764_096_194.5),
                                      clientIP: "203.0.113.9", userAgent: "curl/8", eventCount: 2,
                                      payload: #"{"batch":[{"type":"track","event":"x"}]}"#)
        let bytes = try TributaryJSON.encode(message)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""batchId":123"#))
        #expect(text.contains(#""receivedAt":"2025-11-25T18:43:14.500Z""#))
        #expect(try TributaryJSON.decode(RawBatchMessage.self, from: bytes) == message)
    }

    @Test("JSONValue keeps integers exact and nests objects")
    func jsonValue() throws {
        let text = #"{"big":9007199254740993,"f":1.5,"s":"é","n":null,"a":[true,{"k":"v"}]}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(value["big"] == .int(9_007_199_254_740_993))
        #expect(value["f"] == .double(1.5))
        #expect(value["n"] == .null)
        #expect(value["a"] == .array([.bool(true), .object(["k": .string("v")])]))
        let again = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
        #expect(again == value)
    }

    @Test("Segment events decode, including the metric extension")
    func eventDecoding() throws {
        let text = #"{"type":"metric","name":"api.latency","kind":"timer","value":12.5,"tags":{"route":"/v1"},"messageId":"m1"}"#
        let event = try JSONDecoder().decode(Event.self, from: Data(text.utf8))
        #expect(event.type == .metric)
        #expect(event.kind == .timer)
        #expect(event.value == 12.5)
        #expect(event.tags == ["route": "/v1"])
    }

    @Test("ISO-8601 parsing accepts the forms SDKs send")
    func iso8601() {
        #expect(ISO8601.parse("2026-11-25T18:43:14Z") != nil)
        #expect(ISO8601.parse("2026-11-25T18:43:14.123Z") != nil)
        #expect(ISO8601.parse("2026-11-25T19:43:14.123+01:00") == ISO8601.parse("2026-11-25T18:43:14.123Z"))
        #expect(ISO8601.parse("yesterday") == nil)
    }

    @Test("snowflake ids strictly increase, survive bursts and a clock going back, and carry their time")
    func snowflake() {
        let clock = ManualMillis(1_764_096_194_000)
        let generator = SnowflakeID(instance: 5, now: { clock.value })
        var last: Int64 = 0
        for i in 0..<10_000 {
            if i == 5_000 { clock.value -= 1_000 }
            let id = generator.next()
            #expect(id > last)
            last = id
        }
        let other = SnowflakeID(instance: 6, now: { 1_764_096_194_000 })
        #expect(other.next() != SnowflakeID(instance: 5, now: { 1_764_096_194_000 }).next())
        #expect(SnowflakeID.unixMilliseconds(of: SnowflakeID(instance: 1, now: { 1_764_096_194_000 }).next())
                == 1_764_096_194_000)
    }
}

/// A settable millisecond clock for tests.
final class ManualMillis: @unchecked Sendable {
    var value: Int64
    init(_ value: Int64) { self.value = value }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test("whole-millisecond times format exactly and survive a round trip")
    func milliseconds() {
        for ms: Int64 in [1_764_096_194_123, 1_764_096_194_999, 0, -1, 1_700_000_000_001] {
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let text = ISO8601.format(date)
            let back = ISO8601.parse(text)!
            #expect(Int64((back.timeIntervalSince1970 * 1000).rounded()) == ms, "\(text)")
        }
        #expect(ISO8601.format(Date(timeIntervalSince1970: 1_764_096_194.123)) == "2025-11-25T18:43:14.123Z")
    }
}

@Suite("Fast JSON values")
struct FastJSONTests {
    @Test("parse and serialise agree with Foundation on tricky input")
    func roundTrip() throws {
        let text = #"{"s":"a\"b\\c\n\u00e9\ud83c\udf89","i":-42,"big":9007199254740993,"d":1.5e3,"f":0.25,"t":true,"n":null,"a":[1,[],{}],"o":{}}"#
        let fast = try JSONValue.parse(Array(text.utf8))
        let slow = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(fast == slow || fast["d"] == .double(1500))
        #expect(fast["s"] == .string("a\"b\\c\né🎉"))
        #expect(fast["big"] == .int(9_007_199_254_740_993))
        let again = try JSONValue.parse(fast.serialized())
        #expect(again == fast)
        #expect((try? JSONSerialization.jsonObject(with: Data(fast.serialized()))) != nil)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"{"a":}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(#"[1,2"#.utf8)) }
    }

    @Test("escaped strings decode as Foundation decodes them; a lone surrogate becomes U+FFFD; bad escapes fail")
    func escapes() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = [#"\""#, #"\\"#, #"\/"#, #"\b"#, #"\f"#, #"\n"#, #"\r"#, #"\t"#, #"\u0041"#, #"\u00e9"#, #"\u20AC"#,
                      #"\ud83c\udf89"#, #"\u0000"#, "plain", "é", "🎉", " ", "x"]
        for _ in 0..<500 {
            let body = (0..<Int.random(in: 1...40, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let text = "\"" + body + "\""
            let expected = try JSONDecoder().decode(String.self, from: Data(text.utf8))
            #expect(try JSONValue.parse(Array(text.utf8)) == .string(expected), "\(text)")
        }
        // A raw batch's payload: a whole JSON text as one escaped string.
        let payload = #"{"batch":[{"type":"track","event":"Ünïcode \"quoted\"","properties":{"path":"a\\b"}}]}"#
        let message = try JSONValue.parse(Array(TributaryJSON.encode(["payload": payload])))
        #expect(message["payload"] == .string(payload))
        #expect(try JSONValue.parse(Array(#""a\ud800b""#.utf8)) == .string("a\u{FFFD}b"))
        #expect(try JSONValue.parse(Array(#""\ud800\u0041""#.utf8)) == .string("\u{FFFD}A"), "the escape after a lone surrogate")
        #expect(try JSONValue.parse(Array(#""\udc00\ud83c\udf89""#.utf8)) == .string("\u{FFFD}🎉"))
        for bad in [#""a\x""#, #""a\u12""#, #""a\u12G4b""#, #""a\"#, #""a\"b"#] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(Array(bad.utf8)) }
        }
    }

    @Test("strings are written escaped exactly where they need it, whatever their length and where the byte falls")
    func writtenStrings() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", " ", "é", "€", "🎉", "\"", "\\", "\n", "\t", "\u{1}", "\u{1F}", "\u{7F}", "/", "~"]
        for length in 0..<40 {
            for _ in 0..<20 {
                let text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
                let written = JSONValue.string(text).serialized()
                #expect(try JSONDecoder().decode(String.self, from: Data(written)) == text, "\(text.debugDescription)")
                let plain = !text.utf8.contains { $0 < 32 || $0 == 34 || $0 == 92 }
                #expect(plain == (written.count == text.utf8.count + 2), "escaped only when needed: \(text.debugDescription)")
            }
        }
    }

    @Test("objects of many members nest inside each other's members; a repeated key keeps its last value")
    func objectMembers() throws {
        let inner = (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        let text = #"{"a":1,"o":{\#(inner),"deep":{"x":{"y":[{"z":1,"z":2}]}}},"b":2,"a":3}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value.objectValue?.count == 3)
        #expect(value["a"] == .int(3) && value["b"] == .int(2))
        #expect(value["o"]?.objectValue?.count == 41)
        #expect((0..<40).allSatisfy { value["o"]?["k\($0)"] == .int(Int64($0)) })
        #expect(value["o"]?["deep"]?["x"]?["y"] == .array([.object(["z": .int(2)])]))
        #expect(try JSONValue.parse(value.serialized()) == value)
    }

    @Test("members can be left out at one depth: the rest is parsed as usual, the skipped values still checked")
    func skippingMembers() throws {
        let text = #"{"context":{"keep":1},"events":[{"context":{"ip":"x","a":[1,{"b":"\u00e9\""}]},"id":1,"t":true},"#
            + #"{"id":2,"context":"s\n","props":{"context":3}}]}"#
        let full = try JSONValue.parse(Array(text.utf8))
        let partial = try JSONValue.parse(Array(text.utf8), skippingMembers: ["context"], atDepth: 2)
        #expect(partial["context"] == full["context"], "members at other depths are kept")
        guard case .array(let events)? = partial["events"] else { Issue.record("no events"); return }
        #expect(events.map { $0["context"] } == [nil, nil])
        #expect(events.map { $0["id"] } == [.int(1), .int(2)])
        #expect(events[1]["props"]?["context"] == .int(3))
        for bad in [#"{"e":[{"context":{"a":}}]}"#, #"{"e":[{"context":"\x"}]}"#, #"{"e":[{"context":[1,2}]}"#,
                    #"{"e":[{"context":tru}]}"#] {
            #expect(throws: JSONParseError.self, "\(bad)") {
                try JSONValue.parse(Array(bad.utf8), skippingMembers: ["context"], atDepth: 2)
            }
        }
    }
}

@Suite("Fast message encoding")
struct FastMessageTests {
    @Test("the fast serialiser decodes to the same message as the Codable one")
    func sameAsCodable() throws {
        var event = HydratedEvent(eventID: 7, messageID: "m\"1", type: .page,
                                  timestamp: Date(timeIntervalSince1970: 1_764_096_194.123),
                                  receivedAt: Date(timeIntervalSince1970: 1_764_096_195.456), visitorHash: "ab")
        event.name = "Home"
        event.userID = "u"
        event.properties = ["n": .int(1), "d": .double(2.5), "s": .string("é\n")]
        event.enrichment.country = "US"
        event.enrichment.isBot = true
        event.enrichment.clickIDs = ["gclid": "x"]
        var metric = HydratedEvent(eventID: 8, messageID: "m2", type: .metric, timestamp: Date(timeIntervalSince1970: 0),
                                   receivedAt: Date(timeIntervalSince1970: 1), visitorHash: "cd")
        metric.metric = .init(kind: .timer, value: 3.5, tags: ["a": "b"])
        let message = HydratedBatchMessage(batchID: 42, siteID: 3, events: [event, metric])
        let fast = try TributaryJSON.decode(HydratedBatchMessage.self, from: message.serialized())
        let codable = try TributaryJSON.decode(HydratedBatchMessage.self, from: try TributaryJSON.encode(message))
        #expect(fast == codable)
        #expect(fast.events.map(\.messageID) == ["m\"1", "m2"])
        #expect(String(decoding: message.serialized(), as: UTF8.self).contains(#""batchId":42"#))
    }
}

@Suite("Fast ISO-8601 parsing")
struct FastISO8601Tests {
    @Test("the hand parser agrees with Foundation's", arguments: [
        "2026-11-25T18:43:14Z", "2026-11-25T18:43:14.123Z", "2024-02-29T23:59:59.999999Z", "1999-12-31T00:00:00+05:30",
        "2026-01-01T00:00:00.5-08:00", "1970-01-01T00:00:00Z",
    ])
    func agrees(text: String) throws {
        let fast = try #require(ISO8601.parseCommon(text))
        let slow = try #require((try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text)))
        #expect(abs(fast.timeIntervalSince(slow)) < 0.000_001)
    }

    @Test("malformed text is not parsed by hand", arguments: ["2026-13-01T00:00:00Z", "2026-11-25 18:43:14Z", "2026-11-25T18:43:14", "x"])
    func malformed(text: String) {
        #expect(ISO8601.parseCommon(text) == nil)
    }
}

@Suite("Fast raw batch parsing")
struct FastRawBatchTests {
    @Test("RawBatchMessage.parse reads what the Codable encoder writes")
    func parse() throws {
        let m = RawBatchMessage(batchID: 384_062_313_402_994_688, siteID: 7,
                                receivedAt: Date(timeIntervalSince1970: 1_764_096_194.123), clientIP: nil,
                                userAgent: "UA \"quoted\"", eventCount: 2, payload: #"{"batch":[{},{}]}"#)
        let parsed = try #require(RawBatchMessage.parse(try TributaryJSON.encode(m)))
        let codable = try TributaryJSON.decode(RawBatchMessage.self, from: try TributaryJSON.encode(m))
        #expect(parsed.batchID == codable.batchID && parsed.payload == codable.payload && parsed.userAgent == codable.userAgent)
        #expect(abs(parsed.receivedAt.timeIntervalSince(codable.receivedAt)) < 0.000_001)
        #expect(parsed.clientIP == nil)
        #expect(RawBatchMessage.parse(Array(#"{"batchId":"x"}"#.utf8)) == nil)
    }
}

@Suite("Raw batch messages written straight to bytes")
struct RawBatchBytesTests {
    @Test("serialized() writes what the Codable encoder writes, with or without the optional fields")
    func sameAsEncoder() throws {
        let full = RawBatchMessage(batchID: 384_062_313_402_994_688, siteID: 7,
                                   receivedAt: Date(timeIntervalSince1970: 1_764_096_194.123), clientIP: "203.0.113.9",
                                   userAgent: "UA \"quoted\" \\ é", eventCount: 2,
                                   payload: #"{"batch":[{"type":"track","event":"a/b \"q\""},{}],"sentAt":"x"}"#)
        var bare = full
        bare.clientIP = nil
        bare.userAgent = nil
        for m in [full, bare] {
            #expect(m.serialized() == (try TributaryJSON.encode(m)))
        }
    }

    @Test("control characters are escaped so both parsers read the text back unchanged")
    func controlCharacters() throws {
        let m = RawBatchMessage(batchID: 1, siteID: 2, receivedAt: Date(timeIntervalSince1970: 0), clientIP: nil,
                                userAgent: "tab\there", eventCount: 1, payload: "line\nbreak \u{1} \r \u{1F} end")
        let bytes = m.serialized()
        #expect(!bytes.contains { $0 < 32 })
        #expect(try TributaryJSON.decode(RawBatchMessage.self, from: bytes) == m)
        let parsed = try #require(RawBatchMessage.parse(bytes))
        #expect(parsed.payload == m.payload && parsed.userAgent == m.userAgent)
    }
}

@Suite("Hydrated messages from pre-serialised events")
struct HydratedMessageBytesTests {
    @Test("an event written straight to bytes equals its JSONValue serialised, with every field set or none")
    func directEventBytes() {
        var bare = HydratedEvent(eventID: -3, messageID: "m", type: .identify, timestamp: Date(timeIntervalSince1970: 0.5),
                                 receivedAt: Date(timeIntervalSince1970: 1), visitorHash: "")
        #expect(bare.serialized() == bare.jsonValue.serialized())
        #expect(bare.enrichment.serialized() == bare.enrichment.jsonValue.serialized())
        var full = bare
        full.previousVisitorHash = "p"; full.name = "N\u{1}\"\\"; full.userID = "u"; full.anonymousID = "a"
        full.originalTimestamp = "2026-01-01T00:00:00Z"; full.sentAt = "2026-01-01T00:00:01Z"
        full.properties = ["z": .array([.int(1), .null]), "a": .object(["y": .bool(true), "b": .double(0.25)])]
        full.traits = ["email": .string("x@y")]; full.context = ["ip": .string("1.2.3.4")]
        full.integrations = ["All": .bool(false), "Mixpanel": .bool(true)]
        full.metric = .init(kind: .gauge, value: 1.5, tags: ["b": "2", "a": "1"])
        var e = HydratedEvent.Enrichment()
        e.country = "US"; e.region = "CA"; e.city = "Mountain View"; e.browser = "Chrome"; e.browserVersion = "120"
        e.os = "Windows"; e.osVersion = "10"; e.device = "Desktop"; e.isBot = true; e.url = "https://e.com/?a=1"
        e.path = "/"; e.referrer = "https://g.com"; e.referrerSource = "Google"; e.utmSource = "s"; e.utmMedium = "m"
        e.utmCampaign = "c"; e.utmTerm = "t"; e.utmContent = "o"; e.clickIDs = ["gclid": "g", "fbclid": "f"]
        full.enrichment = e
        #expect(full.serialized() == full.jsonValue.serialized())
        #expect(full.enrichment.serialized() == full.enrichment.jsonValue.serialized())
        bare.type = .metric
        #expect(bare.serialized() == bare.jsonValue.serialized())
        // What an `aggregate` message carries: the same event, only the members statistics read.
        for event in [bare, full] {
            let slim = event.statisticsSerialized(event.encodedObjects())
            let expected = JSONValue.object((event.jsonValue.objectValue ?? [:]).filter { HydratedEvent.statisticsMembers.contains($0.key) })
            #expect(slim == expected.serialized())
        }
        let slim = full.statisticsSerialized(full.encodedObjects())
        let decoded = try? TributaryJSON.decode(HydratedEvent.self, from: slim)
        #expect(decoded?.properties == full.properties && decoded?.enrichment == full.enrichment && decoded?.context == nil
                && decoded?.userID == nil && decoded?.previousVisitorHash == "p")
    }

    @Test("assembling a message from its events' bytes gives the same bytes as serialising it")
    func sameBytes() {
        var e = HydratedEvent(eventID: 7, messageID: "m\"1", type: .track, timestamp: Date(timeIntervalSince1970: 1),
                              receivedAt: Date(timeIntervalSince1970: 2), visitorHash: "v")
        e.name = "Bought"
        e.integrations = ["All": .bool(false)]
        for sink in [nil, Int64(3)] {
            let message = HydratedBatchMessage(batchID: 42, siteID: 9, sinkID: sink, events: [e, e])
            #expect(HydratedBatchMessage.serialized(batchID: 42, siteID: 9, sinkID: sink,
                                                    eventBytes: [e.jsonValue.serialized(), e.jsonValue.serialized()])
                    == message.serialized())
        }
        #expect(HydratedBatchMessage.serialized(batchID: 1, siteID: 2, sinkID: nil, eventBytes: [])
                == HydratedBatchMessage(batchID: 1, siteID: 2, events: []).serialized())
    }
}
