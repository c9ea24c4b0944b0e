import Configuration
import Foundation
import TributaryRuntime

/// The health-checker's own settings (`healthChecker.*`), every one with a default.
///
/// ## Configuration keys
/// - `healthChecker.checkIntervalSeconds` (double, default 15, 0.2…3600): how often every check runs.
/// - `healthChecker.escalateAfter` (int, default 3, 1…100): consecutive failures before the warning becomes a critical page.
/// - `healthChecker.resolveAfter` (int, default 2, 1…100): consecutive passes before an incident resolves.
/// - `healthChecker.repeat.warningMinutes` / `.criticalMinutes` (int, default 240 / 60, 1…10080): how often a
///   still-open incident is notified again.
/// - `healthChecker.flap.window` (int, default 20, 4…1000) and `.maxChanges` (int, default 6, 2…1000): a check whose
///   result changed this often in the last `window` runs is flapping; its incident then resolves only after a
///   whole window of passes, so it stays one incident instead of a stream of pages.
/// - `healthChecker.recoveryGraceSeconds` (double, default 60, 0…3600): after PostgreSQL, Redis or a daemon
///   recovers, the checks that failed because of it have this long to recover before they alert on their own.
/// - `healthChecker.startupGraceSeconds` (double, default 30, 0…3600): after the health-checker starts, failures
///   are shown but open no incident for this long (the daemons started with it are still coming up).
/// - `healthChecker.status.host` (default `127.0.0.1`), `.port` (int, default 8095): `/status`, `/` and `/metrics`.
/// - `healthChecker.runbookBaseURL` (string, default `docs/runbooks/`): prefix of every alert's runbook link.
/// - `healthChecker.deadMansSwitch.url` (string, default empty: off) and `.intervalSeconds` (double, default 60):
///   pinged (GET) after a complete round of checks, at most once per interval.
/// - `healthChecker.notify.timeoutMs` (int, default 10000), `.maxPending` (int, default 1000): notifications
///   waiting to be retried after a receiver failed.
/// - `healthChecker.expect.<service>.instances` (int, default 1, 0…1000): live instances each daemon must have.
/// - `healthChecker.expect.<service>.<job>.everySeconds` / `.graceSeconds`: periodic jobs (defaults: collector
///   and hydration `partitions` 3600/900, aggregator and forwarder `janitor` 600/300).
/// - `healthChecker.anomalyWindowSeconds` (double, default 900, 1…604800): a job result outside its expected
///   range (a batch that kept 0 of 500 events, a partition job that left next week missing) fails its
///   `anomaly:<service>:<job>` check for this long.
/// - `healthChecker.stallSeconds` (double, default 60, 1…86400): a queue whose oldest item is this old while its
///   stage completed nothing for as long is stalled.
/// - `healthChecker.backlog.maxDepth` (int, default 50000), `.maxAgeSeconds` (double, default 300),
///   `.maxSites` (int, default 1000: sites examined per queue for their own depth and age).
/// - `healthChecker.delivery.maxRetryAgeSeconds` (double, default 300, 1…604800): a sink whose oldest event
///   parked for a retry was first tried this long ago is failing its `delivery:<sink>` check (the sink is down or
///   refusing, and events wait).
/// - `healthChecker.inflight.graceSeconds` (double, default 60): items in flight with an expired consumer lease
///   for longer than this (nobody recovered them) fail.
/// - `healthChecker.tie.graceSeconds` (double, default 300), `.windowHours` (double, default 24),
///   `.intervalSeconds` (double, default 60), `.maxReported` (int, default 20), `.maxTracked` (int, default 10000),
///   `.rescanMinutes` (double, default 60): numbers that must tie between stages. Each run reads only what is new since
///   the last; every `rescanMinutes` the whole window is read again (a row deleted later is found then).
/// - `healthChecker.headroom.sequenceFraction` (default 0.5), `.connectionFraction` (0.8),
///   `.redisMemoryFraction` (0.8), `.diskFreeFraction` (0.1), `.diskPaths` (string array, default: `/` and the
///   collector's spool directory).
/// - `healthChecker.canary.writeKeyFiles` (string array, default empty: no canary): one write key per canary
///   site; `.collectorURL` (default `http://<collector.listen.host>:<port>`), `.intervalSeconds` (60),
///   `.timeoutSeconds` (300), `.maxLagSeconds` (120), `.retentionDays` (7).
/// - `healthChecker.history.retentionDays` (int, default 30): check transitions and notifications kept.
/// - `healthChecker.trace.searchDays` (int, default 7, 1…90): how far back `trace` searches the raw batches (and stored events without a dedup row)
///   for a message id no later stage knows; `.maxQueueScan` (int, default 100000, 1…10000000): the items of
///   one site's queue list it reads looking for a batch.
/// - `healthChecker.adminTokenFile` (string, optional, secret file, at least 16 characters): the token
///   `GET /trace/<id>` on the status port wants (`Authorization: Bearer …`); without it, `/trace` is off.
struct HealthCheckerConfiguration: Sendable {
    struct JobExpectation: Sendable, Hashable {
        var service: String
        var job: String
        var everySeconds: Double
        var graceSeconds: Double
    }

    var checkIntervalSeconds: Double
    var escalateAfter: Int
    var resolveAfter: Int
    var repeatWarningSeconds: Double
    var repeatCriticalSeconds: Double
    var flapWindow: Int
    var flapMaxChanges: Int
    var recoveryGraceSeconds: Double
    var startupGraceSeconds: Double
    var statusHost: String
    var statusPort: Int
    var runbookBaseURL: String
    var deadMansSwitchURL: String
    var deadMansSwitchIntervalSeconds: Double
    var notifyTimeoutMs: Int
    var notifyMaxPending: Int
    var instances: [String: Int]
    var jobs: [JobExpectation]
    var stallSeconds: Double
    var anomalyWindowSeconds: Double
    var backlogMaxDepth: Int
    var backlogMaxAgeSeconds: Double
    var backlogMaxSites: Int
    var inflightGraceSeconds: Double
    var deliveryMaxRetryAgeSeconds: Double
    var tieGraceSeconds: Double
    var tieWindowHours: Double
    var tieIntervalSeconds: Double
    var tieMaxReported: Int
    var tieMaxTracked: Int
    var tieRescanSeconds: Double
    var sequenceFraction: Double
    var connectionFraction: Double
    var redisMemoryFraction: Double
    var diskFreeFraction: Double
    var diskPaths: [String]
    var spoolDirectory: String
    var canaryWriteKeyFiles: [String]
    var canaryCollectorURL: String
    var canaryIntervalSeconds: Double
    var canaryTimeoutSeconds: Double
    var canaryMaxLagSeconds: Double
    var canaryRetentionDays: Int
    var historyRetentionDays: Int
    var traceSearchDays: Int
    var traceMaxQueueScan: Int
    var adminToken: String?

    static let services = ["collector", "hydration", "aggregator", "forwarder", "health-checker"]

    init(reader: ConfigReader) throws {
        let p = "healthChecker."
        func int(_ key: String, _ value: Int, _ range: ClosedRange<Int>) throws -> Int {
            try reader.int(forKey: ConfigKey(p + key), default: value, in: range)
        }
        func double(_ key: String, _ value: Double, _ range: ClosedRange<Double>) throws -> Double {
            try reader.double(forKey: ConfigKey(p + key), default: value, in: range)
        }
        checkIntervalSeconds = try double("checkIntervalSeconds", 15, 0.2...3600)
        escalateAfter = try int("escalateAfter", 3, 1...100)
        resolveAfter = try int("resolveAfter", 2, 1...100)
        repeatWarningSeconds = Double(try int("repeat.warningMinutes", 240, 1...10_080)) * 60
        repeatCriticalSeconds = Double(try int("repeat.criticalMinutes", 60, 1...10_080)) * 60
        flapWindow = try int("flap.window", 20, 4...1000)
        flapMaxChanges = try int("flap.maxChanges", 6, 2...1000)
        recoveryGraceSeconds = try double("recoveryGraceSeconds", 60, 0...3600)
        startupGraceSeconds = try double("startupGraceSeconds", 30, 0...3600)
        statusHost = reader.string(forKey: ConfigKey(p + "status.host"), default: "127.0.0.1")
        statusPort = try int("status.port", 8095, 0...65535)
        runbookBaseURL = reader.string(forKey: ConfigKey(p + "runbookBaseURL"), default: "docs/runbooks/")
        deadMansSwitchURL = reader.string(forKey: ConfigKey(p + "deadMansSwitch.url"), default: "")
        if !deadMansSwitchURL.isEmpty && !(deadMansSwitchURL.hasPrefix("http://") || deadMansSwitchURL.hasPrefix("https://")) {
            throw ConfigurationError("healthChecker.deadMansSwitch.url must be an http(s) URL")
        }
        deadMansSwitchIntervalSeconds = try double("deadMansSwitch.intervalSeconds", 60, 1...86_400)
        notifyTimeoutMs = try int("notify.timeoutMs", 10_000, 100...120_000)
        notifyMaxPending = try int("notify.maxPending", 1000, 1...1_000_000)
        var instances: [String: Int] = [:]
        for service in Self.services {
            instances[service] = try int("expect.\(Self.configName(service)).instances", 1, 0...1000)
        }
        self.instances = instances
        let periodic: [(String, String, Double, Double)] = [
            ("collector", "partitions", 3600, 900), ("hydration", "partitions", 3600, 900),
            ("aggregator", "janitor", 600, 300), ("forwarder", "janitor", 600, 300),
        ]
        jobs = try periodic.map { service, job, every, grace in
            let key = "expect.\(service).\(job)."
            return JobExpectation(service: service, job: job, everySeconds: try double(key + "everySeconds", every, 1...604_800),
                                  graceSeconds: try double(key + "graceSeconds", grace, 0...604_800))
        }
        stallSeconds = try double("stallSeconds", 60, 1...86_400)
        anomalyWindowSeconds = try double("anomalyWindowSeconds", 900, 1...604_800)
        backlogMaxDepth = try int("backlog.maxDepth", 50_000, 1...1_000_000_000)
        backlogMaxAgeSeconds = try double("backlog.maxAgeSeconds", 300, 1...604_800)
        backlogMaxSites = try int("backlog.maxSites", 1000, 1...1_000_000)
        inflightGraceSeconds = try double("inflight.graceSeconds", 60, 1...86_400)
        deliveryMaxRetryAgeSeconds = try double("delivery.maxRetryAgeSeconds", 300, 1...604_800)
        tieGraceSeconds = try double("tie.graceSeconds", 300, 1...86_400)
        tieWindowHours = try double("tie.windowHours", 24, 0.01...8760)
        tieIntervalSeconds = try double("tie.intervalSeconds", 60, 0.2...86_400)
        tieMaxReported = try int("tie.maxReported", 20, 1...10_000)
        tieMaxTracked = try int("tie.maxTracked", 10_000, 1...10_000_000)
        tieRescanSeconds = try double("tie.rescanMinutes", 60, 0.01...100_000) * 60
        sequenceFraction = try double("headroom.sequenceFraction", 0.5, 0.01...1)
        connectionFraction = try double("headroom.connectionFraction", 0.8, 0.01...1)
        redisMemoryFraction = try double("headroom.redisMemoryFraction", 0.8, 0.01...1)
        diskFreeFraction = try double("headroom.diskFreeFraction", 0.1, 0...1)
        spoolDirectory = reader.string(forKey: "collector.spool.directory", default: "/var/lib/tributary/collector-spool")
        diskPaths = reader.stringArray(forKey: ConfigKey(p + "headroom.diskPaths"), default: ["/", spoolDirectory])
        canaryWriteKeyFiles = reader.stringArray(forKey: ConfigKey(p + "canary.writeKeyFiles"), default: [])
        let host = reader.string(forKey: "collector.listen.host", default: "127.0.0.1")
        let port = try reader.int(forKey: "collector.listen.port", default: 8080, in: 0...65535)
        canaryCollectorURL = reader.string(forKey: ConfigKey(p + "canary.collectorURL"),
                                           default: "http://\(host == "0.0.0.0" ? "127.0.0.1" : host):\(port)")
        canaryIntervalSeconds = try double("canary.intervalSeconds", 60, 0.2...86_400)
        canaryTimeoutSeconds = try double("canary.timeoutSeconds", 300, 1...86_400)
        canaryMaxLagSeconds = try double("canary.maxLagSeconds", 120, 0.01...86_400)
        canaryRetentionDays = try int("canary.retentionDays", 7, 1...3650)
        historyRetentionDays = try int("history.retentionDays", 30, 1...3650)
        traceSearchDays = try int("trace.searchDays", 7, 1...90)
        traceMaxQueueScan = try int("trace.maxQueueScan", 100_000, 1...10_000_000)
        adminToken = try reader.secret(fileKey: ConfigKey(p + "adminTokenFile"))
        if let token = adminToken, token.count < 16 {
            throw ConfigurationError("healthChecker.adminTokenFile must hold a token of at least 16 characters")
        }
    }

    /// `health-checker` is spelled `healthChecker` in config keys.
    static func configName(_ service: String) -> String {
        service == "health-checker" ? "healthChecker" : service
    }
}
