import Foundation
import Synchronization
import TributaryModels
import TributaryPostgres

/// One round of every check.
struct CheckRound: Sendable {
    var at: Date
    var results: [CheckResult]
    var maintenance: Maintenance.State?

    var failing: [CheckResult] { results.filter { $0.status == .failing } }
    var isHealthy: Bool { !results.contains { $0.status != .ok } }
}

extension PipelineProbe {
    /// Runs every check once. A check whose source is unreachable is left out (PostgreSQL
    /// or Redis itself fails instead); a check that errs for another reason fails, so a
    /// broken check is never mistaken for a healthy pipeline.
    func runAll(now: Date = Date(), forceTies: Bool = false) async -> CheckRound {
        let (pg, redisCheck) = await dependencyChecks()
        var results = [pg, redisCheck]
        var maintenance: Maintenance.State?
        func guarded(_ name: String, _ kind: CheckKind, needs: CheckResult, _ body: () async throws -> [CheckResult]) async {
            guard needs.status == .ok else { return }
            do {
                results += try await body()
                // A group that could not run before passes again under its own name, so its incident resolves.
                if recentlyFailed(name, now: now) { results.append(.ok(name, kind, "the checks run again")) }
            } catch {
                // The server went away mid-round: not this check's failure (the dependency's, next round).
                guard await dependencyAnswers(needs.name) else { return }
                noteFailed(name, now: now)
                results.append(.failing(name, kind, "the check could not run: \(error)", cause: needs.name))
            }
        }
        var sinks: [(id: Int64, name: String)] = lastSinks()
        await guarded("sinks", .postgres, needs: pg) {
            sinks = try await sinkQueues()
            rememberSinks(sinks)
            return []
        }
        await guarded("heartbeats", .heartbeat, needs: redisCheck) {
            let state = try await readRedis()
            maintenance = state.maintenance
            var out = await heartbeatChecks(state, now: now)
            out += jobChecks(state, now: now)
            out.append(spoolCheck(state, now: now))
            out += try await queueChecks(state, sinks: sinks, now: now)
            return out
        }
        await guarded("redis-memory", .redisMemory, needs: redisCheck) { [try await redisHeadroom()] }
        await guarded("headroom", .sequences, needs: pg) { try await postgresHeadroom(now: now) }
        await guarded("delivery", .delivery, needs: pg) { try await deliveryChecks(sinks: sinks, now: now) }
        await guarded("ties", .tieHydration, needs: pg) { try await tieChecks(now: now, force: forceTies) }
        await guarded("canary", .canary, needs: pg) { try await canaryChecks(now: now) }
        results.append(diskCheck())
        // One cause, one page: while PostgreSQL or Redis fails, every other failure is theirs.
        let root = pg.status == .failing ? "postgres" : redisCheck.status == .failing ? "redis" : nil
        for i in results.indices where !results[i].kind.isDependency && results[i].status != .ok {
            if let root { results[i].cause = root }
        }
        return CheckRound(at: now, results: results, maintenance: maintenance)
    }
}
