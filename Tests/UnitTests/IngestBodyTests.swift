import Foundation
import Testing
@testable import Collector

@Suite("Ingest body checks (collector)")
struct IngestBodyTests {
    let limits = IngestLimits(maximumEventBytes: 200, maximumEventsPerBatch: 3, maximumDepth: 8)

    func parse(_ text: String, _ endpoint: IngestEndpoint = .batch) throws(IngestError) -> IngestBody {
        try IngestBody.parse(Array(text.utf8), endpoint: endpoint, limits: limits)
    }

    func refusal(_ text: String, _ endpoint: IngestEndpoint = .batch) -> IngestError? {
        do {
            _ = try parse(text, endpoint)
            return nil
        } catch {
            return error
        }
    }

    @Test("a batch is counted and its writeKey removed wherever it stands")
    func batchWriteKey() throws {
        for text in [#"{"writeKey":"k1","batch":[{"type":"track"},{"type":"page"}]}"#,
                     #"{"batch":[{"type":"track"},{"type":"page"}],"writeKey":"k1"}"#,
                     #"{"batch":[{"type":"track"},{"type":"page"}], "writeKey" : "k1" , "sentAt":"2026-01-01T00:00:00Z"}"#] {
            let body = try parse(text)
            #expect(body.eventCount == 2)
            #expect(body.writeKey == "k1")
            let out = String(decoding: body.payload, as: UTF8.self)
            #expect(!out.contains("k1"))
            #expect((try? JSONSerialization.jsonObject(with: Data(body.payload))) != nil, "not JSON: \(out)")
        }
    }

    @Test("a single event gets its endpoint's type and the batch shape")
    func singleEvent() throws {
        let body = try parse(#"{"writeKey":"k","event":"Signed Up","userId":"u1"}"#, .track)
        #expect(body.writeKey == "k")
        #expect(String(decoding: body.payload, as: UTF8.self) == #"{"batch":[{"type":"track","event":"Signed Up","userId":"u1"}]}"#)
        let empty = try parse(#"{"writeKey":"k"}"#, .identify)
        #expect(String(decoding: empty.payload, as: UTF8.self) == #"{"batch":[{"type":"identify"}]}"#)
        let typed = try parse(#"{"type":"page","name":"Home"}"#, .page)
        #expect(String(decoding: typed.payload, as: UTF8.self) == #"{"batch":[{"type":"page","name":"Home"}]}"#)
        #expect(refusal(#"{"type":"identify"}"#, .track)?.code == "type_mismatch")
    }

    @Test("escaped write keys are decoded")
    func escapedKey() throws {
        #expect(try parse(#"{"writeKey":"a\u0062\"c","batch":[{}]}"#).writeKey == "ab\"c")
    }

    @Test("malformed bodies get 400 with what is wrong and where", arguments: [
        ("", "empty"), ("[1]", "must be a JSON object"), (#"{"batch":[{}]"#, "unexpected end"),
        (#"{"batch":[{}]} x"#, "after the JSON object"), (#"{"batch":[{"a":01}]}"#, "expected ','"),
        (#"{"batch":[{"a":"\x"}]}"#, "invalid escape"), (#"{"batch":[{"a":"\ud800"}]}"#, "unpaired surrogate"),
        ("{\"batch\":[{\"a\":\"tab\there\"}]}", "control character"), (#"{"batch":[{"a":1e400}]}"#, "out of range"),
        (#"{"batch":[{"a":1111111111111111111111111111111111111111111111111111111111111111111111}]}"#, "longer than"),
        (#"{"batch":[[[[[[[[[]]]]]]]]]}"#, "nested deeper"), (#"{"batch":[{"a":tru}]}"#, "invalid literal"),
        (#"{"batch":[{}],}"#, "member name"), (#"{"batch":[{},]}"#, "expected a JSON value"),
    ])
    func malformed(text: String, message: String) {
        let error = refusal(text)
        #expect(error?.status == 400)
        #expect(error?.code == "malformed_json" || text.isEmpty)
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test("invalid UTF-8 is refused: bad bytes, overlongs, surrogates, truncation")
    func invalidUTF8() {
        for bytes: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF5, 0x80, 0x80, 0x80]] {
            let body = Array(#"{"batch":[{"a":""#.utf8) + bytes + Array(#""}]}"#.utf8)
            #expect(throws: IngestError.self) { try IngestBody.parse(body, endpoint: .batch, limits: limits) }
        }
        #expect((try? parse(#"{"batch":[{"a":"é日本🎉"}]}"#)) != nil)
    }

    @Test("wrong shapes and limits get the right status")
    func shapes() {
        #expect(refusal(#"{"events":[]}"#)?.code == "invalid_batch")
        #expect(refusal(#"{"batch":{}}"#)?.code == "invalid_batch")
        #expect(refusal(#"{"batch":[]}"#)?.code == "empty_batch")
        #expect(refusal(#"{"batch":[1]}"#)?.code == "invalid_event")
        #expect(refusal(#"{"batch":[{},{},{},{}]}"#)?.status == 413)
        let big = String(repeating: "x", count: 300)
        #expect(refusal(#"{"batch":[{"a":"\#(big)"}]}"#)?.code == "event_too_large")
        #expect(refusal(#"{"a":"\#(big)"}"#, .track)?.code == "event_too_large")
        #expect(refusal(#"{"writeKey":5,"batch":[{}]}"#)?.code == "invalid_write_key")
    }
}
