import Foundation
import TributaryModels

extension PipelineProbe {
    /// How long a stopped instance (no clean exit) is remembered when nothing replaced it.
    static let forgetStoppedSeconds: Double = 24 * 3600

    /// One check per daemon: enough live instances, and no instance that stopped beating
    /// without leaving (kill -9, SIGSTOP, a hang) unless a newer one replaced it.
    func heartbeatChecks(_ state: RedisState, now: Date) async -> [CheckResult] {
        var results: [CheckResult] = []
        var forget: [Instance] = []
        for service in HealthCheckerConfiguration.services {
            let name = "heartbeat:\(service)"
            let expected = configuration.instances[service] ?? 1
            let all = state.instances.filter { $0.service == service }
            let live = all.filter(\.isLive)
            var stopped: [Instance] = []
            for instance in all where !instance.isLive {
                let replaced = live.contains { ($0.heartbeat?.startedAt ?? .distantPast) > instance.lastBeat.addingTimeInterval(-1) }
                if replaced || now.timeIntervalSince(instance.lastBeat) > Self.forgetStoppedSeconds {
                    forget.append(instance)
                } else {
                    stopped.append(instance)
                }
            }
            var detail: [String: JSONValue] = [
                "live": .array(live.map { .string($0.instance) }), "expected": .int(Int64(expected)),
            ]
            if !stopped.isEmpty {
                detail["stopped"] = .array(stopped.map {
                    .object(["instance": .string($0.instance), "lastBeat": .string(ISO8601.format($0.lastBeat)),
                             "silentSeconds": .int(Int64(now.timeIntervalSince($0.lastBeat)))])
                })
            }
            if let first = stopped.min(by: { $0.lastBeat < $1.lastBeat }) {
                results.append(.failing(name, .heartbeat,
                    "\(service) instance \(first.instance) stopped beating \(Int(now.timeIntervalSince(first.lastBeat))) s ago"
                    + " (\(live.count) of \(expected) live)", detail))
            } else if live.count < expected {
                results.append(.failing(name, .heartbeat, "\(live.count) of \(expected) \(service) instances are alive", detail))
            } else {
                results.append(.ok(name, .heartbeat, "\(live.count) \(service) instance(s) alive", detail))
            }
        }
        await prune(state, forget: forget, now: now)
        return results
    }

    /// Periodic jobs that must complete every so often, and job results outside their
    /// expected range (reported by the daemon as anomalies) within the last window.
    func jobChecks(_ state: RedisState, now: Date) -> [CheckResult] {
        var results: [CheckResult] = []
        for expectation in configuration.jobs {
            let name = "job:\(expectation.service):\(expectation.job)"
            let live = state.live(expectation.service)
            guard !live.isEmpty else {
                results.append(.unknown(name, .job, "no live \(expectation.service) instance runs it",
                                        cause: "heartbeat:\(expectation.service)"))
                continue
            }
            let limit = expectation.everySeconds + expectation.graceSeconds
            let last = state.lastCompletion(expectation.service, expectation.job)
            let oldestStart = live.compactMap { $0.heartbeat?.startedAt }.min() ?? now
            var detail: [String: JSONValue] = ["everySeconds": .double(expectation.everySeconds),
                                               "graceSeconds": .double(expectation.graceSeconds)]
            if let last { detail["lastCompletedAt"] = .string(ISO8601.format(last)) }
            if let last, now.timeIntervalSince(last) <= limit {
                results.append(.ok(name, .job, "\(expectation.service) \(expectation.job) completed \(Int(now.timeIntervalSince(last))) s ago", detail))
            } else if last == nil && now.timeIntervalSince(oldestStart) <= limit {
                results.append(.ok(name, .job, "\(expectation.service) \(expectation.job) not due yet", detail))
            } else {
                let since = last.map { "\(Int(now.timeIntervalSince($0))) s ago" } ?? "never since the instances started"
                results.append(.failing(name, .job, "\(expectation.service) \(expectation.job) last completed \(since)"
                                        + " (expected every \(Int(expectation.everySeconds)) s)", detail))
            }
        }
        var byJob: [String: [JobResult]] = [:]
        for result in state.jobs { byJob["\(result.service):\(result.job)", default: []].append(result) }
        for (key, reports) in byJob.sorted(by: { $0.key < $1.key }) {
            let name = "anomaly:\(key)"
            let recent = reports.filter { ($0.lastAnomalyAt.map { now.timeIntervalSince($0) } ?? .infinity) <= configuration.anomalyWindowSeconds }
            if let latest = recent.max(by: { ($0.lastAnomalyAt ?? .distantPast) < ($1.lastAnomalyAt ?? .distantPast) }),
               let text = latest.lastAnomaly {
                results.append(.failing(name, .anomaly, text, [
                    "instance": .string(latest.instance), "at": .string(ISO8601.format(latest.lastAnomalyAt ?? now)),
                    "anomaliesSinceStart": .int(recent.reduce(0) { $0 + $1.anomalies }),
                ]))
            } else if reports.contains(where: { $0.anomalies > 0 }) {
                results.append(.ok(name, .anomaly, "no result out of range in the last \(Int(configuration.anomalyWindowSeconds)) s"))
            }
        }
        return results
    }
}
