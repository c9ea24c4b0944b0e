import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
#if canImport(Glibc)
import Glibc
#endif

extension PipelineProbe {
    /// Dependencies: PostgreSQL and Redis answer the health-checker.
    func dependencyChecks() async -> (postgres: CheckResult, redis: CheckResult) {
        let pg: CheckResult
        do {
            _ = try await postgres.query("SELECT 1")
            pg = .ok("postgres", .postgres, "PostgreSQL answers")
        } catch {
            pg = .failing("postgres", .postgres, "PostgreSQL does not answer: \(error)")
        }
        let r: CheckResult
        do {
            _ = try await redis.send("PING")
            r = .ok("redis", .redis, "Redis answers")
        } catch {
            r = .failing("redis", .redis, "Redis does not answer: \(error)")
        }
        return (pg, r)
    }

    /// Headroom that PostgreSQL shows: sequences, partitions ahead, connections.
    func postgresHeadroom(now: Date) async throws -> [CheckResult] {
        var results: [CheckResult] = []
        let sequences = try await postgres.query("""
            SELECT schemaname || '.' || sequencename AS name, last_value::numeric / max_value::numeric AS used
            FROM pg_sequences
            WHERE schemaname IN ('collector', 'hydration', 'aggregator', 'forwarder', 'health') AND last_value IS NOT NULL
            ORDER BY used DESC
            """).rows
        let over = try sequences.compactMap { row -> (String, Double)? in
            let used = try row.double("used") ?? 0
            return used > configuration.sequenceFraction ? (try row.string("name") ?? "", used) : nil
        }
        let top = try sequences.first.map { (try $0.string("name") ?? "", try $0.double("used") ?? 0) }
        if over.isEmpty {
            results.append(.ok("sequences", .sequences, top.map { "the fullest sequence, \($0.0), is \(Self.percent($0.1)) used" }
                               ?? "no sequence used yet"))
        } else {
            results.append(.failing("sequences", .sequences,
                over.map { "\($0.0) is \(Self.percent($0.1)) used" }.joined(separator: ", ")
                + " (limit \(Self.percent(configuration.sequenceFraction)))",
                ["sequences": .object(Dictionary(uniqueKeysWithValues: over.map { ($0.0, JSONValue.double($0.1)) }))]))
        }
        // Next week's partition of hydration's events, tomorrow's of the collector's raw batches.
        let partitions = Set(try await postgres.query("""
            SELECT n.nspname || '.' || c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace
            WHERE (n.nspname = 'hydration' AND p.relname = 'events') OR (n.nspname = 'collector' AND p.relname = 'raw_batches')
            """).rows.compactMap { try $0.string("name") })
        var missing: [String] = []
        let nextWeek = Self.weekStart(now).addingTimeInterval(7 * 86_400)
        let hydrationNext = "hydration.events_w" + Self.compactDay(nextWeek)
        if partitions.contains(where: { $0.hasPrefix("hydration.") }) && !partitions.contains(hydrationNext) {
            missing.append(hydrationNext)
        }
        let tomorrow = Self.compactDay(now.addingTimeInterval(86_400))
        if partitions.contains(where: { $0.hasPrefix("collector.") }) && !partitions.contains(where: { $0.hasPrefix("collector.") && $0.hasSuffix(tomorrow) }) {
            missing.append("collector.raw_batches for \(tomorrow)")
        }
        results.append(missing.isEmpty
            ? .ok("partitions", .partitions, "next week's and tomorrow's partitions exist")
            : .failing("partitions", .partitions, "missing partition(s): " + missing.joined(separator: ", "),
                       ["missing": .array(missing.map { .string($0) })]))
        let connections = try await postgres.query("""
            SELECT (SELECT count(*) FROM pg_stat_activity) AS used, current_setting('max_connections')::int AS max
            """).rows.first
        let used = try connections?.int("used") ?? 0
        let max = try connections?.int("max") ?? 1
        let fraction = Double(used) / Double(Swift.max(max, 1))
        let detail: [String: JSONValue] = ["used": .int(used), "max": .int(max)]
        results.append(fraction >= configuration.connectionFraction
            ? .failing("connections", .connections, "PostgreSQL has \(used) of \(max) connections in use", detail)
            : .ok("connections", .connections, "\(used) of \(max) PostgreSQL connections in use", detail))
        return results
    }

    /// Redis memory against `maxmemory`.
    func redisHeadroom() async throws -> CheckResult {
        let info = try await redis.send("INFO", "memory").string ?? ""
        var fields: [String: String] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]).trimmingCharacters(in: .whitespaces) }
        }
        let used = Int64(fields["used_memory"] ?? "") ?? 0
        let max = Int64(fields["maxmemory"] ?? "") ?? 0
        let detail: [String: JSONValue] = ["usedBytes": .int(used), "maxBytes": .int(max)]
        guard max > 0 else {
            return .ok("redis-memory", .redisMemory, "Redis uses \(used >> 20) MiB; no maxmemory set", detail)
        }
        let fraction = Double(used) / Double(max)
        return fraction >= configuration.redisMemoryFraction
            ? .failing("redis-memory", .redisMemory, "Redis uses \(Self.percent(fraction)) of maxmemory (\(used >> 20) of \(max >> 20) MiB)", detail)
            : .ok("redis-memory", .redisMemory, "Redis uses \(Self.percent(fraction)) of maxmemory", detail)
    }

    /// The collector's spool (reported by each collector instance as job `spool`).
    func spoolCheck(_ state: RedisState, now: Date) -> CheckResult {
        let live = Set(state.live("collector").map(\.instance))
        let reports = state.jobs.filter { $0.service == "collector" && $0.job == "spool" && live.contains($0.instance) }
        let full = reports.filter { ($0.last["bytes"] ?? 0) > 0 }
        guard !full.isEmpty else {
            return .ok("spool", .spool, reports.isEmpty ? "no collector reports a spool" : "every collector's spool is empty")
        }
        let bytes = full.reduce(0) { $0 + ($1.last["bytes"] ?? 0) }
        return .failing("spool", .spool, "\(full.count) collector(s) hold \(bytes) bytes of batches in the spool (PostgreSQL unreachable for them?)",
                        ["bytes": .int(bytes), "instances": .array(full.map { .string($0.instance) })], cause: "postgres")
    }

    /// Free space on the configured paths (those that exist on this host).
    func diskCheck() -> CheckResult {
        var low: [String] = []
        var detail: [String: JSONValue] = [:]
        for path in configuration.diskPaths {
            var s = statvfs()
            guard statvfs(path, &s) == 0, s.f_blocks > 0 else { continue }
            let free = Double(s.f_bavail) / Double(s.f_blocks)
            detail[path] = .double((free * 1000).rounded() / 1000)
            if free < configuration.diskFreeFraction { low.append("\(path) has \(Self.percent(free)) free") }
        }
        return low.isEmpty
            ? .ok("disk", .disk, "enough free disk space", ["free": .object(detail)])
            : .failing("disk", .disk, low.joined(separator: ", ") + " (limit \(Self.percent(configuration.diskFreeFraction)))",
                       ["free": .object(detail)])
    }

    static func percent(_ fraction: Double) -> String { "\(Int((fraction * 100).rounded()))%" }

    static func weekStart(_ date: Date) -> Date {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.dateInterval(of: .weekOfYear, for: date)!.start
    }

    static func compactDay(_ date: Date) -> String {
        String(ISO8601.format(date).prefix(10)).replacingOccurrences(of: "-", with: "")
    }
}
