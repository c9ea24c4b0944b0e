import Foundation
import Testing
import TributaryModels
@testable import Hydration

@Suite("Hydration: raw batches read in one pass")
struct RawPayloadTests {
    let validator = EventValidator()

    /// What validation makes of an event: the event, or the rule and field it broke.
    enum Outcome: Equatable {
        case event(Event)
        case failure(String, String?)
    }

    func outcomeParsedWhole(_ text: String) throws -> Outcome {
        let value = try JSONValue.parse(Array(text.utf8))
        do throws(ValidationFailure) {
            return .event(try validator.validate(value))
        } catch {
            return .failure(error.rule, error.field)
        }
    }

    func outcomeRead(_ element: RawPayload.Element) -> Outcome {
        do throws(ValidationFailure) {
            switch element {
            case .event(let fields, _): return .event(try validator.validate(fields))
            case .other(let value): return .event(try validator.validate(value))
            }
        } catch {
            return .failure(error.rule, error.field)
        }
    }

    static let events = [
        #"[1]"#, #""text""#, #"null"#, #"{}"#,
        #"{"userId":"u"}"#,
        #"{"type":"click","userId":"u"}"#,
        #"{"type":"page"}"#,
        #"{"type":"track","userId":"u","event":""}"#,
        #"{"type":"alias","previousId":"a","anonymousId":"x"}"#,
        #"{"type":"group","userId":"u"}"#,
        #"{"type":"track","userId":["u"],"event":"e"}"#,
        #"{"type":"track","userId":"u","event":"e","properties":[1]}"#,
        #"{"type":"track","userId":"u","event":"e","timestamp":"yesterday"}"#,
        #"{"type":"track","userId":"u","event":"e","sentAt":5}"#,
        #"{"type":"metric","name":"m","kind":"gauge","value":"x"}"#,
        #"{"type":"metric","name":"m","kind":"gauge","value":1,"tags":{"a":[1]}}"#,
        #"{"type":"metric","name":"q.depth","kind":"gauge","value":3,"tags":{"q":"h","n":1}}"#,
        #"{"type":"track","userId":42,"event":"e","timestamp":"2026-11-25T10:00:00Z","properties":{"a":{"b":[1,2.5,null,true]}}}"#,
        #"{ "type" : "page" , "anonymousId" : "a\u00e9\n" , "context" : { "page" : { "url" : "https://x.example/" } } }"#,
        #"{"type":"identify","anonymousId":"a","traits":{"plan":"pro"},"integrations":{"All":false},"unknown":{"deep":[{}]}}"#,
        // A repeated member: the last value counts, as in a parsed object.
        #"{"type":"page","type":"track","userId":"u","event":"e","event":"f"}"#,
        #"{"type":"track","userId":"u","event":"e","originalTimestamp":"2026-11-25T10:00:00Z","name":null}"#,
    ]

    @Test("each event read straight from the batch's text validates as the parsed event does")
    func sameOutcome() throws {
        let text = #"{"sentAt":"2026-11-25T10:00:01Z","batch":["# + Self.events.joined(separator: ",") + "]}"
        let payload = try #require(RawPayload.parse(text))
        #expect(payload.batch.count == Self.events.count)
        #expect(payload.sentAt == "2026-11-25T10:00:01Z")
        for (element, event) in zip(payload.batch, Self.events) {
            #expect(outcomeRead(element) == (try outcomeParsedWhole(event)), "\(event)")
        }
    }

    @Test("a rejected event's text is its compact JSON with sorted keys, as before")
    func rejectedText() throws {
        let payload = try #require(RawPayload.parse(#"{"batch":[ { "userId" : "u", "type" : "click" } , [1, 2] ]}"#))
        #expect(payload.text(of: payload.batch[0]) == #"{"type":"click","userId":"u"}"#)
        #expect(payload.text(of: payload.batch[1]) == "[1,2]")
    }

    @Test("a body not of the batch shape is refused; a repeated batch member keeps its last value", arguments: [
        ("[]", false), (#"{"sentAt":"x"}"#, false), (#"{"batch":{}}"#, false), (#"{"batch":[1]} x"#, false),
        (#"{"batch":[{"a":}]}"#, false), (#"{"batch":[],"batch":5}"#, false), (#"{"batch":[{"type":"page"}"#, false),
        (#"{"batch":5,"batch":[]}"#, true), (#" {"batch":[],"context":{"ip":"1.2.3.4"}} "#, true),
    ] as [(String, Bool)])
    func shape(text: String, accepted: Bool) {
        #expect((RawPayload.parse(text) != nil) == accepted)
    }

    @Test("the batch's context is kept; nesting deeper than the parser's limit is refused, not a crash")
    func contextAndDepth() throws {
        let payload = try #require(RawPayload.parse(#"{"batch":[],"context":{"ip":"1.2.3.4"}}"#))
        #expect(payload.context?["ip"] == .string("1.2.3.4"))
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(RawPayload.parse(#"{"batch":[{"type":"page","properties":{"a":"# + deep + "}}]}") == nil)
        let deepEvents = String(repeating: "{\"a\":", count: 600) + "1" + String(repeating: "}", count: 600)
        #expect(RawPayload.parse(#"{"batch":["# + deepEvents + "]}") == nil)
    }
}
