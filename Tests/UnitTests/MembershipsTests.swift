import Foundation
import Testing
import TributaryModels
@testable import Aggregator

@Suite("Aggregator: memberships stored per visitor and day")
struct MembershipsTests {
    func member(_ day: Int32, _ dim: String, _ value: String, _ visitor: String = "v") -> Member {
        Member(key: DayKey(day: day, dim: dim, value: value), visitor: visitor)
    }

    @Test("a visitor-day's memberships read back as written, whatever their values hold")
    func roundTrip() throws {
        let members: [Member: Int64] = [
            member(20_000, "", ""): 1, member(20_000, Dim.hour, "13"): 1, member(20_000, Dim.page, "/a\"b\\c"): 1,
            member(20_000, Dim.page, "/ünï cødé 🎉\n\t"): 1, member(20_000, Dim.source, "Google"): 3,
            member(20_000, Dim.prop("plan"), "{\"not\": \"json\"}"): 1, member(20_000, Dim.entryPage, "\u{1}"): 2,
        ]
        let text = Memberships.encode(members)
        var read: [Member: Int64] = [:]
        try Memberships.decode(text, into: &read, visitor: "v", day: 20_000)
        #expect(read == members)
        #expect(Memberships.encode(read) == text, "equal sets give equal text")
    }

    @Test("rows regrouped by migration 5 (json_object_agg, with its spaces) decode")
    func migratedRows() throws {
        var read: [Member: Int64] = [:]
        try Memberships.decode(#"{ "" : { "" : 1 }, "@hour" : { "13" : 1 }, "page" : { "/x\"y" : 1 }, "source" : { "Google" : 2 } }"#,
                               into: &read, visitor: "a", day: 7)
        #expect(read == [member(7, "", "", "a"): 1, member(7, Dim.hour, "13", "a"): 1, member(7, Dim.page, "/x\"y", "a"): 1,
                         member(7, Dim.source, "Google", "a"): 2])
    }

    @Test("stored text that is not {dim: {value: refs > 0}} is refused, not misread")
    func refusesBadText() {
        for bad in ["[]", #"{"page": 1}"#, #"{"page": {"/": "1"}}"#, #"{"page": {"/": 0}}"#, "not json"] {
            var read: [Member: Int64] = [:]
            #expect(throws: (any Error).self) { try Memberships.decode(bad, into: &read, visitor: "v", day: 1) }
        }
    }

    @Test("new event memberships: only those not stored, each with the same row the day before and after")
    func newMembers() {
        var state = Memberships(refs: [member(9, Dim.page, "/"): 1, member(11, Dim.page, "/"): 1, member(10, "", ""): 1])
        let added = AggregatorHandler.addMembers([member(10, Dim.page, "/"), member(10, "", ""), member(10, Dim.hour, "3")],
                                                 to: &state)
        let byKey = Dictionary(uniqueKeysWithValues: added.map { ($0.member, $0) })
        #expect(byKey.count == 2, "the stored total membership is not new")
        #expect(byKey[member(10, Dim.page, "/")].map { [$0.before, $0.after] } == [true, true])
        #expect(byKey[member(10, Dim.hour, "3")].map { [$0.before, $0.after] } == [false, false])
        #expect(state.contains(member(10, Dim.page, "/")) && state.contains(member(10, Dim.hour, "3")))
    }

    @Test("visit refs: a row gains a visitor when its refs leave 0 and loses one when they reach it; carried follows")
    func visitRefs() {
        var state = Memberships(refs: [member(4, Dim.source, "Google"): 1, member(5, Dim.source, "Google"): 2])
        var daily: [DayKey: Counts] = [:]
        AggregatorHandler.applyRefs([member(5, Dim.source, "Google"): -2, member(5, Dim.source, "Bing"): 1,
                                     member(6, Dim.source, "Google"): 1], to: &state, daily: &daily)
        #expect(daily[DayKey(day: 5, dim: Dim.source, value: "Google")].map { [$0.visitors, $0.carried] } == [-1, -1])
        #expect(daily[DayKey(day: 5, dim: Dim.source, value: "Bing")].map { [$0.visitors, $0.carried] } == [1, 0])
        #expect(daily[DayKey(day: 6, dim: Dim.source, value: "Google")].map { [$0.visitors, $0.carried] } == [1, 0],
                "not carried: the day before no longer counts the visitor")
        #expect(!state.contains(member(5, Dim.source, "Google")))
        #expect(state[member(4, Dim.source, "Google")] == 1)
    }
}
