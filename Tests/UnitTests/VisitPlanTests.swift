import Foundation
import Testing
import TributaryModels
@testable import Aggregator

@Suite("Aggregator: visits planned per group of linked visitor hashes")
struct VisitPlanTests {
    static let timeout: TimeInterval = 1800

    func event(_ id: Int64, _ minute: Double, _ visitor: String, path: String? = "/", previous: String? = nil) -> StatEvent {
        StatEvent(eventID: id, type: .page, name: nil, time: Date(timeIntervalSince1970: 1_900_000_000 + minute * 60),
                  visitor: visitor, previousVisitor: previous, enrichment: path.map { ["path": .string($0)] } ?? [:],
                  properties: nil, props: [])
    }

    /// What the aggregator keeps between turns: the stored interactions and visits.
    struct Store {
        var events: [StatEvent] = []
        var visits: [Session] = []

        /// One turn, as `AggregatorHandler.recomputeVisits` does it against the tables.
        mutating func apply(_ fresh: [StatEvent]) -> VisitPlan {
            events += fresh
            var hashes = Set(fresh.map(\.visitor))
            for e in fresh { if let p = e.previousVisitor { hashes.insert(p) } }
            var links: Set<[String]> = []
            for e in events {
                guard let p = e.previousVisitor else { continue }
                if hashes.contains(e.visitor) || hashes.contains(p) { links.insert([e.visitor, p]) }
            }
            for l in links { hashes.formUnion(l) }
            let stored = visits.filter { hashes.contains($0.visitor) }
            let plan = VisitPlan(fresh: fresh, stored: stored, links: links.map { ($0[0], $0[1]) }, timeout: VisitPlanTests.timeout)
            let windows = plan.windows
            let read = events.filter { e in windows.contains { $0.hash == e.visitor && $0.window.contains(e.time) } }
            let change = plan.change(reading: read, timeout: VisitPlanTests.timeout)
            for v in change.removed {
                let index = visits.firstIndex(of: v)
                #expect(index != nil, "removed a visit that was not stored: \(v)")
                if let index { visits.remove(at: index) }
            }
            visits += change.added
            return plan
        }
    }

    @Test("whatever the turns and their order, the stored visits end as a recompute from all interactions makes them")
    func matchesFullRecompute() {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<200 {
            var all: [StatEvent] = []
            var id: Int64 = 0
            for v in 0..<4 {
                // Yesterday's hash, then (from minute 600, "midnight") today's, carrying the previous one for 30 minutes.
                var minute = Double.random(in: 0...500, using: &rng)
                for _ in 0..<Int.random(in: 1...25, using: &rng) {
                    minute += [1, 5, 20, 29, 31, 45, 90].randomElement(using: &rng)!
                    id += 1
                    let today = minute >= 600
                    let previous = today && minute < 630 ? "old\(v)" : nil
                    all.append(event(id, minute, today ? "new\(v)" : "old\(v)", path: "/p\(Int(minute) % 3)",
                                     previous: previous))
                }
            }
            // Mostly in order, with some turns reordered, as batches from several clients arrive.
            var turns: [[StatEvent]] = []
            var rest = all.sorted { $0.time < $1.time }
            while !rest.isEmpty {
                let n = min(rest.count, Int.random(in: 1...6, using: &rng))
                turns.append(Array(rest.prefix(n)))
                rest.removeFirst(n)
            }
            if round % 2 == 1 { turns.shuffle(using: &rng) }
            var store = Store()
            for turn in turns { _ = store.apply(turn) }
            let expected = Set(VisitBuilder.visits(all, timeout: Self.timeout))
            let got = Set(store.visits)
            #expect(got == expected, "round \(round): extra \(got.subtracting(expected)), missing \(expected.subtracting(got))")
            #expect(store.visits.count == Set(store.visits).count, "round \(round): a visit stored twice")
        }
    }

    @Test("a long visit that grows in order is extended in memory: nothing is read back, for it or for others")
    func inOrderReadsNothing() {
        var store = Store()
        var id: Int64 = 0
        for minute in stride(from: 0.0, to: 600, by: 2) {
            id += 1
            let plan = store.apply([event(id, minute, "busy"), event(id + 10_000, minute, "other\(Int(minute) / 60)")])
            #expect(plan.windows.isEmpty, "minute \(minute)")
        }
        let busy = store.visits.filter { $0.visitor == "busy" }
        #expect(busy.count == 1 && busy.first?.interactions == 300)
    }

    @Test("a late interaction reads back only its own visitor's window, not a long visit of another")
    func lateReadsOwnWindow() throws {
        var store = Store()
        for minute in stride(from: 0.0, to: 300, by: 5) {
            _ = store.apply([event(Int64(minute) + 1, minute, "busy")])
        }
        _ = store.apply([event(1000, 290, "late")])
        let plan = store.apply([event(1001, 296, "busy"), event(1002, 250, "late")])
        let windows = plan.windows
        #expect(windows.map(\.hash) == ["late"])
        let window = try #require(windows.first?.window)
        #expect(window.lowerBound == event(0, 220, "late").time && window.upperBound == event(0, 290, "late").time)
    }
}
