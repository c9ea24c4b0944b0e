import Foundation
import Testing
import TributaryModels
@testable import Aggregator

@Suite("Aggregator: visits, local time and queries")
struct AggregatorLogicTests {
    func event(_ id: Int64, _ minute: Double, _ visitor: String = "v", path: String? = "/", previous: String? = nil,
               type: EventType = .page) -> StatEvent {
        StatEvent(eventID: id, type: type, name: nil, time: Date(timeIntervalSince1970: 1_900_000_000 + minute * 60),
                  visitor: visitor, previousVisitor: previous, enrichment: path.map { ["path": .string($0)] } ?? [:],
                  properties: nil, props: [])
    }

    @Test("visits are the same whatever order their interactions arrive in")
    func orderIndependent() {
        let events = [event(1, 0), event(2, 10, path: "/a"), event(3, 45), event(4, 50, path: "/b"), event(5, 200),
                      event(6, 5, "w"), event(7, 20, "w", type: .track)]
        let expected = Set(VisitBuilder.visits(events, timeout: 1800))
        #expect(expected.count == 4)
        for _ in 0..<20 {
            #expect(Set(VisitBuilder.visits(events.shuffled(), timeout: 1800)) == expected)
        }
        let first = VisitBuilder.visits(events, timeout: 1800).first { $0.visitor == "v" && $0.pageviews == 2 && $0.entryPage == "/" }
        #expect(first?.exitPage == "/a" && first?.durationSeconds == 600)
    }

    @Test("an interaction just after midnight continues the visit of its previous hash")
    func continuity() {
        let visits = VisitBuilder.visits([event(1, 0, "old"), event(2, 20, "new", previous: "old"), event(3, 40, "new")],
                                         timeout: 1800)
        #expect(visits.count == 1)
        #expect(visits.first?.visitor == "old" && visits.first?.interactions == 3)
        let apart = VisitBuilder.visits([event(1, 0, "old"), event(2, 40, "new", previous: "old")], timeout: 1800)
        #expect(apart.count == 2, "too long after the previous hash's visit: a visit of its own")
    }

    @Test("a recompute window grows until every stored visit it touches lies inside it")
    func window() throws {
        let stored = VisitBuilder.visits([event(1, 0), event(2, 25), event(3, 50)], timeout: 1800)
        let window = try #require(VisitBuilder.window(fresh: [event(9, 80)], stored: stored, timeout: 1800))
        #expect(window.lowerBound == event(1, 0).time)
        #expect(window.upperBound == event(9, 110).time)
    }

    @Test("a visit change subtracts the stored visit and adds the recomputed one at their start day")
    func visitChange() {
        let clock = LocalClock(identifier: "UTC")
        let before = VisitBuilder.visits([event(1, 0)], timeout: 1800)
        let after = VisitBuilder.visits([event(1, 0), event(2, 10, path: "/x")], timeout: 1800)
        let change = VisitChange(stored: before, recomputed: after)
        let (daily, _, refs) = change.counts(clock: clock)
        let day = clock.day(event(1, 0).time)
        #expect(daily[.total(day)] == Counts(visits: 0, bounces: -1, duration: 600, visitPageviews: 1))
        #expect(refs[Member(key: DayKey(day: day, dim: Dim.exitPage, value: "/"), visitor: "v")] == -1)
        #expect(refs[Member(key: DayKey(day: day, dim: Dim.exitPage, value: "/x"), visitor: "v")] == 1)
        #expect(refs[Member(key: DayKey(day: day, dim: Dim.source, value: Dim.direct), visitor: "v")] == nil)
        #expect(VisitChange(stored: after, recomputed: after).isEmpty)
    }

    @Test("local days and hours follow the site's zone, across DST and before 1970")
    func localClock() throws {
        let ny = LocalClock(identifier: "America/New_York")
        let t = try #require(ISO8601.parse("2030-01-10T04:50:00Z"))
        #expect(LocalClock.dateText(ny.day(t)) == "2030-01-09")
        #expect(LocalClock.hourText(ny.hour(t)) == "2030-01-09 23:00:00")
        #expect(ISO8601.format(ny.start(ofDay: ny.day(t))) == "2030-01-09T05:00:00.000Z")
        let summer = try #require(ISO8601.parse("2030-07-10T03:59:00Z"))
        #expect(LocalClock.dateText(ny.day(summer)) == "2030-07-09")
        #expect(LocalClock.day(fromText: "1969-12-31") == -1)
        #expect(LocalClock.dateText(-1) == "1969-12-31")
        #expect(LocalClock.day(fromText: "2030-02-29") == nil)
        #expect(LocalClock.day(fromText: "2028-02-29") != nil)
    }

    @Test("relative date ranges resolve against the site's today")
    func dateRanges() throws {
        let today = try #require(LocalClock.day(fromText: "2030-03-15"))
        func range(_ name: String) throws -> String {
            let (a, b) = try StatsQuery.dateRange(.string(name), today: today, firstDataDay: today - 100)
            return LocalClock.dateText(a) + ".." + LocalClock.dateText(b)
        }
        #expect(try range("day") == "2030-03-15..2030-03-15")
        #expect(try range("7d") == "2030-03-09..2030-03-15")
        #expect(try range("month") == "2030-03-01..2030-03-15")
        #expect(try range("6mo") == "2029-10-01..2030-03-15")
        #expect(try range("12mo") == "2029-04-01..2030-03-15")
        #expect(try range("year") == "2030-01-01..2030-03-15")
        #expect(try range("all") == "2029-12-05..2030-03-15")
    }
}
