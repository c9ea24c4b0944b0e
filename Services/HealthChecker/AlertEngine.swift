import Foundation
import TributaryModels

/// How bad an alert is.
public enum Severity: String, Sendable, Codable, Comparable {
    case warning
    case critical

    public static func < (a: Severity, b: Severity) -> Bool { a == .warning && b == .critical }
}

/// One notification to send to the receivers.
struct Notice: Sendable, Hashable {
    enum Kind: String, Sendable { case trigger, escalate, `repeat`, resolve, test }

    var kind: Kind
    var check: String
    var checkKind: CheckKind
    var severity: Severity
    var summary: String
    var detail: [String: JSONValue]
    var openedAt: Date
    var at: Date
    /// Failing checks grouped under this one (one cause, one page).
    var grouped: [String] = []

    /// The receivers' de-duplication key: stable per check, so a trigger, its escalation
    /// and its resolve are one alert.
    var dedupKey: String { "tributary:\(check)" }
}

/// Decides, round by round, which incidents open, escalate, repeat and resolve:
/// a warning on the first failure, a critical page after `escalateAfter` consecutive
/// failures, a resolve after `resolveAfter` consecutive passes (a whole flap window of
/// passes while the check flaps), repeats per severity, and nothing for a check grouped
/// under a failing cause. Pure logic: the caller sends and records.
struct AlertEngine: Sendable {
    struct Policy: Sendable {
        var escalateAfter = 3
        var resolveAfter = 2
        var repeatWarningSeconds: Double = 4 * 3600
        var repeatCriticalSeconds: Double = 3600
        var flapWindow = 20
        var flapMaxChanges = 6
        var recoveryGraceSeconds: Double = 60
    }

    /// An incident that is open.
    struct Incident: Sendable, Hashable {
        var severity: Severity
        var openedAt: Date
        var summary: String
        /// The severity the receivers were last told (nil: not told, e.g. opened in maintenance).
        var notified: Severity?
        var lastNotifiedAt: Date?
    }

    struct CheckState: Sendable {
        var failures = 0
        var passes = 0
        var history: [Bool] = []
        var incident: Incident?
        var groupedUntil: Date?
        var lastCause: String?
    }

    let policy: Policy
    private(set) var states: [String: CheckState] = [:]
    /// When each check last went from failing to passing (the start of its recovery grace).
    private(set) var recoveredAt: [String: Date] = [:]

    init(policy: Policy) {
        self.policy = policy
    }

    /// Restores incidents that were open when the health-checker stopped (from the health schema).
    mutating func restore(check: String, incident: Incident) {
        states[check, default: CheckState()].incident = incident
    }

    func isFlapping(_ state: CheckState) -> Bool {
        zip(state.history, state.history.dropFirst()).filter { $0 != $1 }.count >= policy.flapMaxChanges
    }

    /// Processes one round of results; returns the notices to send (none while silenced,
    /// but the incidents still open, escalate and resolve).
    mutating func process(_ results: [CheckResult], now: Date, silenced: Bool) -> [Notice] {
        var notices: [Notice] = []
        let failing = Set(results.filter { $0.status == .failing }.map(\.name))
        for result in results where result.status == .ok {
            if let s = states[result.name], s.failures > 0 || s.incident != nil { recoveredAt[result.name] = now }
        }
        let recoveries = recoveredAt
        let grace = policy.recoveryGraceSeconds
        let recovering = { (name: String) -> Bool in
            recoveries[name].map { now.timeIntervalSince($0) < grace } ?? false
        }
        // PostgreSQL or Redis just came back: the pipeline catches up, anything failing is still theirs.
        let rootRecovering = results.first { $0.kind.isDependency && $0.status == .ok && recovering($0.name) }?.name
        for result in results where result.status != .unknown {
            var s = states[result.name] ?? CheckState()
            let failed = result.status == .failing
            s.history.append(!failed)
            if s.history.count > policy.flapWindow { s.history.removeFirst(s.history.count - policy.flapWindow) }
            if failed {
                s.failures += 1
                s.passes = 0
            } else {
                s.passes += 1
                s.failures = 0
            }
            // Grouped: its cause fails now, or recovered less than the grace ago.
            if failed, let cause = result.cause, failing.contains(cause) {
                s.groupedUntil = now.addingTimeInterval(policy.recoveryGraceSeconds)
                s.lastCause = cause
            } else if failed, s.incident == nil, !result.kind.isDependency,
                      let cause = (result.cause.flatMap { recovering($0) ? $0 : nil }) ?? rootRecovering {
                // Its cause recovered a moment ago: give it the same grace.
                s.groupedUntil = recoveredAt[cause]!.addingTimeInterval(policy.recoveryGraceSeconds)
                s.lastCause = cause
            }
            let grouped = failed && (s.groupedUntil.map { $0 > now } ?? false) && s.incident == nil
            if !failed { s.groupedUntil = nil }
            if failed && !grouped {
                if s.incident == nil {
                    s.incident = Incident(severity: s.failures >= policy.escalateAfter ? .critical : .warning,
                                          openedAt: now, summary: result.summary)
                }
                s.incident!.summary = result.summary
                if s.incident!.severity == .warning && s.failures >= policy.escalateAfter { s.incident!.severity = .critical }
            }
            if var incident = s.incident {
                let needed = isFlapping(s) ? policy.flapWindow : policy.resolveAfter
                if !failed && s.passes >= needed {
                    if incident.notified != nil && !silenced {
                        notices.append(notice(.resolve, result, incident, now: now))
                    }
                    s.incident = nil
                } else if !silenced {
                    if incident.notified == nil || incident.notified! < incident.severity {
                        notices.append(notice(incident.notified == nil ? .trigger : .escalate, result, incident, now: now))
                        incident.notified = incident.severity
                        incident.lastNotifiedAt = now
                    } else if let last = incident.lastNotifiedAt,
                              now.timeIntervalSince(last) >= (incident.severity == .critical
                                                              ? policy.repeatCriticalSeconds : policy.repeatWarningSeconds) {
                        notices.append(notice(.repeat, result, incident, now: now))
                        incident.lastNotifiedAt = now
                    }
                    s.incident = incident
                } else {
                    s.incident = incident
                }
            }
            states[result.name] = s
        }
        // Each notice lists the failing checks grouped under it.
        for i in notices.indices where notices[i].kind != .resolve {
            notices[i].grouped = results.filter { $0.status != .ok && $0.cause == notices[i].check && $0.name != notices[i].check }
                .map(\.name).sorted()
        }
        return notices
    }

    private func notice(_ kind: Notice.Kind, _ result: CheckResult, _ incident: Incident, now: Date) -> Notice {
        Notice(kind: kind, check: result.name, checkKind: result.kind, severity: incident.severity,
               summary: kind == .resolve ? "resolved: \(incident.summary)" : result.summary, detail: result.detail,
               openedAt: incident.openedAt, at: now)
    }

    /// The open incidents, by check.
    var openIncidents: [String: Incident] {
        states.compactMapValues(\.incident)
    }
}
