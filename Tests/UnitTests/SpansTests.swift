import Testing
@testable import Aggregator

@Suite("Spans: which spans a range reads, which a pass builds")
struct SpansTests {
    typealias Span = Spans.Span

    @Test("a range reads the largest built spans that fit, and its other days one by one")
    func plan() {
        let built: Set<Span> = [Span(first: 0, days: 2), Span(first: 2, days: 2), Span(first: 0, days: 4),
                                Span(first: 4, days: 2), Span(first: 8, days: 8), Span(first: 8, days: 4)]
        let p = Spans.plan(built: built, first: 1, last: 17)
        #expect(p.spans == [Span(first: 2, days: 2), Span(first: 4, days: 2), Span(first: 8, days: 8)])
        #expect(p.days == [1, 6, 7, 16, 17])
        let whole = Spans.plan(built: built, first: 0, last: 15)
        #expect(whole.spans == [Span(first: 0, days: 4), Span(first: 4, days: 2), Span(first: 8, days: 8)])
        #expect(whole.days == [6, 7])
        #expect(Spans.plan(built: [], first: 5, last: 7).days == [5, 6, 7])
        #expect(Spans.plan(built: built, first: 3, last: 2) == ([], []))
    }

    @Test("every day of the range is read exactly once, whatever is built")
    func partition() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var built: Set<Span> = []
            for length in Spans.lengths {
                for first in stride(from: Int32(-128), to: 128, by: Int(length)) where Bool.random(using: &generator) {
                    built.insert(Span(first: first, days: length))
                }
            }
            let first = Int32.random(in: -100...60, using: &generator), last = first + Int32.random(in: 0...70, using: &generator)
            let p = Spans.plan(built: built, first: first, last: last)
            var covered = p.days
            for s in p.spans {
                #expect(built.contains(s) && Spans.aligned(s.first, s.days))
                covered += Array(s.first...s.last)
            }
            #expect(covered.sorted() == Array(first...last))
        }
    }

    @Test("a pass builds each missing span after its two halves, only within the closed days")
    func missing() {
        let all = Spans.missing(built: [], from: -3, through: 12)
        #expect(all.filter { $0.days == 2 }.map(\.first) == [-2, 0, 2, 4, 6, 8, 10])
        #expect(all.filter { $0.days == 4 }.map(\.first) == [0, 4, 8])
        #expect(all.filter { $0.days == 8 }.map(\.first) == [0])
        #expect(all.allSatisfy { $0.first >= -3 && $0.last <= 12 })
        for (i, span) in all.enumerated() where span.days > 2 {
            let (a, b) = Spans.halves(of: span)
            #expect(all[..<i].contains(a) && all[..<i].contains(b))
        }
        let some = Spans.missing(built: [Span(first: 0, days: 2), Span(first: 4, days: 2)], from: 0, through: 7)
        #expect(some == [Span(first: 2, days: 2), Span(first: 6, days: 2), Span(first: 0, days: 4), Span(first: 4, days: 4),
                         Span(first: 0, days: 8)])
        #expect(Spans.missing(built: Set(all), from: -3, through: 12).isEmpty)
        #expect(Spans.aligned(-4, 4) && !Spans.aligned(-2, 4) && Spans.aligned(0, 64))
    }
}
