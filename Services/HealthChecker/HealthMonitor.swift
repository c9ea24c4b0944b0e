import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TributaryHTTP
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// The latest round and the open incidents, for the status endpoint.
final class StatusBoard: Sendable {
    struct Snapshot: Sendable {
        var round: CheckRound?
        var incidents: [String: AlertEngine.Incident] = [:]
    }

    private let state = Mutex(Snapshot())

    func update(_ round: CheckRound, incidents: [String: AlertEngine.Incident]) {
        state.withLock { $0 = Snapshot(round: round, incidents: incidents) }
    }

    var snapshot: Snapshot { state.withLock { $0 } }
}

/// The health-checker's loop: every interval, run every check, let the alert engine
/// decide, notify the receivers (unless in maintenance), record the history, publish the
/// status and ping the dead man's switch.
struct HealthMonitor: Service, CustomStringConvertible {
    let probe: PipelineProbe
    let notifier: Notifier
    let recorder: HistoryRecorder
    let receivers: ReceiverStore
    let board: StatusBoard
    let http: HTTPClient
    let configuration: HealthCheckerConfiguration
    let logger: Logger

    var description: String { "HealthMonitor" }

    func run() async throws {
        var engine = AlertEngine(policy: .init(
            escalateAfter: configuration.escalateAfter, resolveAfter: configuration.resolveAfter,
            repeatWarningSeconds: configuration.repeatWarningSeconds, repeatCriticalSeconds: configuration.repeatCriticalSeconds,
            flapWindow: configuration.flapWindow, flapMaxChanges: configuration.flapMaxChanges,
            recoveryGraceSeconds: configuration.recoveryGraceSeconds))
        if let open = try? await recorder.openIncidents() {
            for (check, incident) in open { engine.restore(check: check, incident: incident) }
        }
        var known: [Receiver] = []
        var lastPing: ContinuousClock.Instant?
        var lastPrune = ContinuousClock.now - .seconds(3600)
        let startedAt = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = ContinuousClock.now
            let round = await probe.runAll()
            known = await currentReceivers(known)
            let before = engine.openIncidents
            // Within the start-up grace, failures are shown but open nothing (passes still resolve).
            let warmingUp = ContinuousClock.now - startedAt < .milliseconds(Int(configuration.startupGraceSeconds * 1000))
            let judged = warmingUp ? round.results.map { r -> CheckResult in
                var r = r
                if r.status == .failing && before[r.name] == nil { r.status = .unknown }
                return r
            } : round.results
            let notices = engine.process(judged, now: round.at, silenced: round.maintenance != nil)
            let after = engine.openIncidents
            recorder.append(Self.incidentEntries(before: before, after: after, round: round))
            recorder.noteTransitions(round)
            let deliveries = await notifier.deliver(notices, to: known)
            recorder.append(deliveries.map { .notified($0) })
            await recorder.flush()
            board.update(round, incidents: after)
            HealthMetrics.publish(round, incidents: after)
            for notice in notices {
                logger.notice("alert", metadata: ["check": "\(notice.check)", "kind": "\(notice.kind.rawValue)",
                                                  "severity": "\(notice.severity.rawValue)", "summary": "\(notice.summary)"])
            }
            if !configuration.deadMansSwitchURL.isEmpty,
               lastPing.map({ ContinuousClock.now - $0 >= .seconds(configuration.deadMansSwitchIntervalSeconds) }) ?? true {
                lastPing = .now
                await ping()
            }
            if ContinuousClock.now - lastPrune >= .seconds(3600) {
                lastPrune = .now
                try? await recorder.prune()
            }
            let elapsed = ContinuousClock.now - started
            let interval = Duration.milliseconds(Int(configuration.checkIntervalSeconds * 1000))
            if elapsed < interval { try? await gracefulSleep(for: interval - elapsed) }
        }
    }

    /// The receivers from PostgreSQL (copied to Redis), else the last known, else Redis's copy.
    func currentReceivers(_ known: [Receiver]) async -> [Receiver] {
        if let fresh = try? await receivers.all() {
            if fresh != known, let bytes = try? TributaryJSON.encode(fresh) {
                _ = try? await probe.redis.send("SET", ReceiverStore.cacheKey, bytes)
            }
            return fresh
        }
        if !known.isEmpty { return known }
        guard let bytes = try? await probe.redis.send("GET", ReceiverStore.cacheKey).bytes else { return [] }
        return (try? TributaryJSON.decode([Receiver].self, from: bytes)) ?? []
    }

    /// The incident rows that change between two sets of open incidents.
    static func incidentEntries(before: [String: AlertEngine.Incident], after: [String: AlertEngine.Incident],
                                round: CheckRound) -> [HistoryRecorder.Entry] {
        var entries: [HistoryRecorder.Entry] = []
        let byName = Dictionary(round.results.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (check, incident) in after.sorted(by: { $0.key < $1.key }) {
            if let old = before[check] {
                if old.severity < incident.severity { entries.append(.escalated(check: check, at: round.at)) }
            } else {
                entries.append(.opened(check: check, severity: .warning, summary: incident.summary,
                                       detail: byName[check]?.detail ?? [:], at: incident.openedAt,
                                       silenced: round.maintenance != nil))
                if incident.severity == .critical { entries.append(.escalated(check: check, at: round.at)) }
            }
        }
        for check in before.keys.sorted() where after[check] == nil {
            entries.append(.resolved(check: check, at: round.at))
        }
        return entries
    }

    /// Pings the dead man's switch: the outside service pages if the pings stop.
    func ping() async {
        do {
            let response = try await http.send(HTTPClientRequest(method: "GET", url: configuration.deadMansSwitchURL,
                                                                 timeoutMs: configuration.notifyTimeoutMs))
            if !(200..<300).contains(response.status) {
                logger.warning("dead man's switch answered \(response.status)")
            }
        } catch {
            logger.warning("dead man's switch unreachable", metadata: ["error": "\(error)"])
        }
    }
}

/// Prometheus gauges of the latest round.
enum HealthMetrics {
    static func publish(_ round: CheckRound, incidents: [String: AlertEngine.Incident]) {
        for result in round.results where result.status != .unknown {
            Gauge(label: "tributary_health_check_ok", dimensions: [("check", result.name)])
                .record(result.status == .ok ? 1 : 0)
            if result.kind == .backlog, let queue = result.detail["queue"]?.stringValue {
                if case .int(let waiting)? = result.detail["waiting"] {
                    Gauge(label: "tributary_health_queue_waiting", dimensions: [("queue", queue)]).record(waiting)
                }
                if case .int(let held)? = result.detail["inflight"] {
                    Gauge(label: "tributary_health_queue_inflight", dimensions: [("queue", queue)]).record(held)
                }
                if case .int(let age)? = result.detail["oldestAgeSeconds"] {
                    Gauge(label: "tributary_health_queue_oldest_age_seconds", dimensions: [("queue", queue)]).record(age)
                }
            }
            if result.kind == .canary, case .object(let lags)? = result.detail["lagSeconds"] {
                for (stage, value) in lags {
                    if let seconds = value.doubleValue {
                        Gauge(label: "tributary_health_canary_lag_seconds", dimensions: [("check", result.name), ("stage", stage)])
                            .record(seconds)
                    }
                }
            }
        }
        Gauge(label: "tributary_health_checks_failing").record(round.failing.count)
        Gauge(label: "tributary_health_incidents_open").record(incidents.count)
        Gauge(label: "tributary_health_maintenance").record(round.maintenance == nil ? 0 : 1)
    }
}
