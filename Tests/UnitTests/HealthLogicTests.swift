import Foundation
import Testing
import TributaryModels
@testable import HealthChecker

@Suite("Health-checker logic: escalation, resolve, flapping, grouping, payloads")
struct HealthLogicTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func repeated<T>(_ x: T, _ n: Int) -> [T] { Array(repeating: x, count: n) }

    static func result(_ name: String, _ failing: Bool, cause: String? = nil) -> CheckResult {
        CheckResult(name: name, kind: name == "postgres" ? .postgres : name == "redis" ? .redis : .heartbeat, status: failing ? .failing : .ok, summary: failing ? "\(name) down" : "ok",
                    cause: cause)
    }

    /// Runs rounds of (failing?) for one check; returns the notice kinds and severities per round.
    static func run(_ engine: inout AlertEngine, _ rounds: [Bool], check: String = "heartbeat:hydration",
                    silenced: Bool = false, start: Int = 0) -> [[String]] {
        rounds.enumerated().map { i, failing in
            engine.process([result(check, failing)], now: t0.addingTimeInterval(Double(start + i) * 15), silenced: silenced)
                .map { "\($0.kind.rawValue):\($0.severity.rawValue)" }
        }
    }

    @Test("A warning on the first failure, critical after N in a row, a resolve after M passes, nothing in between")
    func escalation() {
        var engine = AlertEngine(policy: .init(escalateAfter: 3, resolveAfter: 2))
        let notices = Self.run(&engine, [true, true, true, true, false, false, false])
        #expect(notices == [["trigger:warning"], [], ["escalate:critical"], [], [], ["resolve:critical"], []])
        #expect(engine.openIncidents.isEmpty)
    }

    @Test("One pass between failures does not resolve (hysteresis); a still-open incident repeats per severity")
    func hysteresisAndRepeat() {
        var engine = AlertEngine(policy: .init(escalateAfter: 10, resolveAfter: 2, repeatWarningSeconds: 60))
        let notices = Self.run(&engine, [true, false, true, true, true, true, true])
        #expect(notices[0] == ["trigger:warning"])
        #expect(notices[1].isEmpty && notices[2].isEmpty)
        #expect(notices.flatMap { $0 }.filter { $0 == "repeat:warning" }.count == 1)
        #expect(engine.openIncidents.count == 1)
    }

    @Test("A flapping check stays one incident: no stream of triggers and resolves")
    func flapping() {
        var engine = AlertEngine(policy: .init(escalateAfter: 100, resolveAfter: 2, flapWindow: 10, flapMaxChanges: 4))
        // Fail once, pass twice, ten times over: undamped, that is ten triggers and ten resolves.
        let pattern = Array(Self.repeated([true, false, false], 10).joined()) + [true]
        let notices = Self.run(&engine, pattern).flatMap { $0 }
        // Once it is seen flapping (a few rounds of history), the incident stays open and quiet.
        #expect(notices.filter { $0.hasPrefix("trigger") }.count <= 3, "\(notices)")
        #expect(notices.filter { $0.hasPrefix("resolve") }.count <= 2, "\(notices)")
        #expect(engine.openIncidents.count == 1)
    }

    @Test("Failures with one cause are one page: the grouped checks notify nobody, even just after the cause recovers")
    func grouping() {
        var engine = AlertEngine(policy: .init(escalateAfter: 2, resolveAfter: 1, recoveryGraceSeconds: 60))
        var all: [Notice] = []
        for i in 0..<4 {
            all += engine.process([Self.result("postgres", true), Self.result("stalled:hydrate", true, cause: "postgres"),
                                   Self.result("spool", true, cause: "postgres")],
                                  now: Self.t0.addingTimeInterval(Double(i) * 15), silenced: false)
        }
        #expect(Set(all.map(\.check)) == ["postgres"])
        #expect(all.first?.grouped == ["spool", "stalled:hydrate"])
        // PostgreSQL is back; the spool needs a moment to drain: within the grace, still quiet.
        let after = engine.process([Self.result("postgres", false), Self.result("spool", true)],
                                   now: Self.t0.addingTimeInterval(70), silenced: false)
        #expect(after.map(\.kind) == [.resolve])
        // Past the grace, a spool that still does not drain is its own problem.
        let later = engine.process([Self.result("postgres", false), Self.result("spool", true)],
                                   now: Self.t0.addingTimeInterval(200), silenced: false)
        #expect(later.map(\.check) == ["spool"])
    }

    @Test("Right after PostgreSQL recovers, a check that starts failing only now is still given the grace")
    func graceAfterRecovery() {
        var engine = AlertEngine(policy: .init(escalateAfter: 2, resolveAfter: 1, recoveryGraceSeconds: 60))
        _ = engine.process([Self.result("postgres", true), Self.result("stalled:forward:1", false)], now: Self.t0, silenced: false)
        let back = engine.process([Self.result("postgres", false), Self.result("stalled:forward:1", true)],
                                  now: Self.t0.addingTimeInterval(15), silenced: false)
        #expect(back.map(\.check) == ["postgres"])
        let stillCatchingUp = engine.process([Self.result("postgres", false), Self.result("stalled:forward:1", true)],
                                             now: Self.t0.addingTimeInterval(30), silenced: false)
        #expect(stillCatchingUp.isEmpty)
        let later = engine.process([Self.result("postgres", false), Self.result("stalled:forward:1", true)],
                                   now: Self.t0.addingTimeInterval(90), silenced: false)
        #expect(later.map(\.check) == ["stalled:forward:1"])
    }

    @Test("Maintenance silences: incidents open and close without a notice; one still open afterwards is notified then")
    func maintenance() {
        var engine = AlertEngine(policy: .init(escalateAfter: 2, resolveAfter: 1))
        #expect(Self.run(&engine, [true, true, false], silenced: true).flatMap { $0 }.isEmpty)
        #expect(Self.run(&engine, [true, true], silenced: true, start: 3).flatMap { $0 }.isEmpty)
        #expect(Self.run(&engine, [true], start: 5) == [["trigger:critical"]])
    }

    @Test("An incident open before a restart is carried on: no second trigger, and its resolve is sent")
    func restore() {
        var engine = AlertEngine(policy: .init(escalateAfter: 3, resolveAfter: 1))
        engine.restore(check: "heartbeat:hydration",
                       incident: .init(severity: .critical, openedAt: Self.t0, summary: "x", notified: .critical, lastNotifiedAt: Self.t0))
        #expect(Self.run(&engine, [true, false]) == [[], ["resolve:critical"]])
    }

    @Test("Unknown results (the check could not run) neither fail nor pass")
    func unknown() {
        var engine = AlertEngine(policy: .init(escalateAfter: 2, resolveAfter: 1))
        _ = Self.run(&engine, [true])
        let n = engine.process([CheckResult(name: "heartbeat:hydration", kind: .heartbeat, status: .unknown, summary: "?")],
                               now: Self.t0.addingTimeInterval(30), silenced: false)
        #expect(n.isEmpty)
        #expect(engine.openIncidents["heartbeat:hydration"]?.severity == .warning)
    }

    static let notice = Notice(kind: .trigger, check: "tie-hydration", checkKind: .tieHydration, severity: .critical,
                               summary: "1 batch(es) do not tie", detail: ["replay": .array([.string("collector replay --site 1 --batches 7")])],
                               openedAt: t0, at: t0, grouped: ["spool"])

    @Test("PagerDuty Events v2: trigger with a stable dedup_key, severity, source and runbook link; resolve by dedup_key")
    func pagerDuty() throws {
        let trigger = NoticePayload.pagerDuty(Self.notice, routingKey: "R", runbook: "docs/runbooks/tie-hydration.md", source: "h")
        let o = try #require(trigger.objectValue)
        #expect(o["routing_key"] == .string("R"))
        #expect(o["event_action"] == .string("trigger"))
        #expect(o["dedup_key"] == .string("tributary:tie-hydration"))
        let payload = try #require(o["payload"]?.objectValue)
        #expect(payload["severity"] == .string("critical"))
        #expect(payload["source"] == .string("h"))
        #expect(payload["custom_details"]?.objectValue?["grouped"] == .array([.string("spool")]))
        var resolve = Self.notice
        resolve.kind = .resolve
        let r = try #require(NoticePayload.pagerDuty(resolve, routingKey: "R", runbook: "x", source: "h").objectValue)
        #expect(r["event_action"] == .string("resolve"))
        #expect(r["dedup_key"] == .string("tributary:tie-hydration"))
        #expect(r["payload"] == nil)
    }

    @Test("Slack: the text carries severity, check, summary, grouped checks and the runbook")
    func slack() throws {
        let text = try #require(NoticePayload.slack(Self.notice, runbook: "docs/runbooks/tie-hydration.md", source: "h")
            .objectValue?["text"]?.stringValue)
        #expect(text.hasPrefix("[CRITICAL] tie-hydration: 1 batch(es) do not tie"))
        #expect(text.contains("spool") && text.contains("docs/runbooks/tie-hydration.md"))
    }

    @Test("Every check kind has a runbook in docs/runbooks/")
    func runbooks() {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for kind in CheckKind.allCases {
            #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("docs/runbooks/\(kind.runbook)").path),
                    "docs/runbooks/\(kind.runbook)")
        }
    }

    @Test("Every check kind is in the kind enum of docs/health-openapi.yaml, and every kind there exists")
    func openAPIKinds() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/health-openapi.yaml"), encoding: .utf8)
        let start = try #require(text.range(of: "enum: [postgres,"))
        let end = try #require(text[start.upperBound...].firstIndex(of: "]"))
        let listed = Set(text[text.index(start.lowerBound, offsetBy: 7)..<end]
            .split(whereSeparator: { ", \n[".contains($0) }).map(String.init))
        #expect(listed == Set(CheckKind.allCases.map(\.rawValue)))
    }

    @Test("A queue item's age comes from its receivedAt")
    func itemAge() {
        let item = Array(#"{"batchId":1,"receivedAt":"2026-12-01T05:00:00.000Z","siteId":2}"#.utf8)
        #expect(PipelineProbe.receivedAt(item) == ISO8601.parse("2026-12-01T05:00:00.000Z"))
        #expect(PipelineProbe.receivedAt(Array("{}".utf8)) == nil)
    }
}
