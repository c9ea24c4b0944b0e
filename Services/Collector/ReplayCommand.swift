import ArgumentParser
import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// `collector replay`: sends raw batches from `collector.raw_batches` through the pipeline
/// again. Every stage is idempotent (ledgers keyed by batch id): a batch a stage applied
/// is skipped there (hydration sends its stored events on again), and what a stage missed
/// is filled in. The command the health-checker's tie alerts name.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-enqueue raw batches of a site (by id, or received in a time range) to fill gaps downstream.",
        discussion: "Safe to repeat: every stage skips what it already applied. Times are ISO 8601 (2026-12-01T10:00:00Z) or dates (2026-12-01, UTC midnight).")

    @OptionGroup var options: CommonOptions
    @Option(help: "The site whose batches to replay.") var site: Int64
    @Option(help: "Batch ids, comma-separated.") var batches: String?
    @Option(help: "Replay batches received at or after this time.") var from: String?
    @Option(help: "Replay batches received before this time.") var to: String?
    @Option(help: "The most batches one run replays (a guard against replaying too much by mistake).") var limit = 100_000
    @Flag(help: "Print what would be replayed; change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func ids() throws -> [Int64] {
        guard let batches else { return [] }
        return try batches.split(separator: ",").map {
            guard let id = Int64($0.trimmingCharacters(in: .whitespaces)), id > 0 else {
                throw ValidationError("--batches must be batch ids separated by commas; \($0) is not one")
            }
            return id
        }
    }

    static func time(_ text: String, _ option: String) throws -> Date {
        if let date = ISO8601.parse(text) { return date }
        if let date = ISO8601.parse(text + "T00:00:00Z") { return date }
        throw ValidationError("\(option) must be an ISO 8601 time like 2026-12-01T10:00:00Z or a date like 2026-12-01")
    }

    func validate() throws {
        guard site > 0 else { throw ValidationError("--site must be a site id") }
        guard (1...10_000_000).contains(limit) else { throw ValidationError("--limit must be 1-10000000") }
        let ids = try ids()
        if batches != nil {
            guard from == nil && to == nil else { throw ValidationError("give either --batches or --from and --to, not both") }
            guard !ids.isEmpty else { throw ValidationError("--batches lists no batch id") }
        } else {
            guard let from, let to else { throw ValidationError("give --batches, or --from and --to") }
            guard try Self.time(from, "--from") < Self.time(to, "--to") else { throw ValidationError("--from must be before --to") }
        }
    }

    func run() async throws {
        let reader = try await ConfigLoader.load(path: options.config)
        let configuration = try RuntimeConfiguration(daemon: .collector, reader: reader)
        let pool = NIOThreadPoolBox(threads: 2)
        defer { pool.stop() }
        let db = PostgresClient(configuration: configuration.postgres, maximumConnections: 1, threadPool: pool.pool)
        defer { db.close() }
        let redis = RedisConnection(configuration: configuration.redis, threadPool: pool.pool)
        defer { redis.close() }
        let queue = ReliableQueue(name: QueueName.hydrate, connection: redis)
        let ids = try ids()
        var condition = "site_id = $1"
        var parameters: [any PostgresEncodable] = [site]
        if !ids.isEmpty {
            condition += " AND batch_id = ANY($2::bigint[])"
            parameters.append("{" + ids.map(String.init).joined(separator: ",") + "}")
        } else {
            condition += " AND received_at >= $2 AND received_at < $3"
            parameters += [PostgresTime.format(try Self.time(from!, "--from")), PostgresTime.format(try Self.time(to!, "--to"))]
        }
        let found: [(Int64, Date)]
        do {
            found = try await db.query("""
                SELECT batch_id, received_at FROM collector.raw_batches WHERE \(condition) ORDER BY received_at, batch_id
                LIMIT \(limit + 1)
                """, parameters).rows.map { (try $0.int("batch_id") ?? 0, try $0.date("received_at") ?? Date()) }
        } catch let error as PostgresError where error.code == .connectionFailed {
            throw DaemonError("cannot connect to PostgreSQL at \(configuration.postgres.host):\(configuration.postgres.port) as \(configuration.postgres.user)")
        } catch let error as PostgresError where error.sqlState == "42P01" {
            throw DaemonError("the collector schema is not migrated; run: collector migrate")
        }
        guard found.count <= limit else {
            throw DaemonError("more than \(limit) batches match; narrow the range or raise --limit")
        }
        let missing = Set(ids).subtracting(found.map(\.0)).sorted()
        if dryRun {
            if json {
                printJSON(["site": site, "dryRun": true, "batches": found.map(\.0), "notFound": missing])
            } else {
                print("would replay \(found.count) batch(es) of site \(site)"
                      + (found.isEmpty ? "" : ": " + found.prefix(20).map { String($0.0) }.joined(separator: ",") + (found.count > 20 ? ",…" : "")))
                if !missing.isEmpty { print("not found: " + missing.map(String.init).joined(separator: ",")) }
            }
            return
        }
        var replayed = 0
        var index = 0
        let progress = found.count > 2000
        while index < found.count {
            let chunk = Array(found[index..<min(index + 500, found.count)])
            let rows = try await db.query("""
                SELECT batch_id, received_at, client_ip, user_agent, event_count, payload FROM collector.raw_batches
                WHERE site_id = $1 AND batch_id = ANY($2::bigint[]) AND received_at >= $3 AND received_at <= $4
                ORDER BY received_at, batch_id
                """, [site, "{" + chunk.map { String($0.0) }.joined(separator: ",") + "}",
                      PostgresTime.format(chunk.map(\.1).min()!), PostgresTime.format(chunk.map(\.1).max()!)]).rows
            let items = try rows.map { row in
                QueueItem(site: String(site), payload: RawBatchMessage(
                    batchID: try row.int("batch_id") ?? 0, siteID: site, receivedAt: try row.date("received_at") ?? Date(),
                    clientIP: try row.string("client_ip"), userAgent: try row.string("user_agent"),
                    eventCount: Int(try row.int("event_count") ?? 0), payload: try row.string("payload") ?? "").serialized())
            }
            do {
                try await queue.push(items)
            } catch {
                throw DaemonError("Redis at \(configuration.redis.host):\(configuration.redis.port): \(error) (\(replayed) batch(es) replayed before it)")
            }
            replayed += items.count
            index += chunk.count
            if progress { FileHandle.standardError.write(Data("replayed \(replayed) of \(found.count)\n".utf8)) }
        }
        if json {
            printJSON(["site": site, "replayed": replayed, "batches": found.map(\.0), "notFound": missing])
        } else {
            print("replayed \(replayed) batch(es) of site \(site) to the hydrate queue")
            if !missing.isEmpty { print("not found: " + missing.map(String.init).joined(separator: ",")) }
        }
        if !missing.isEmpty && replayed == 0 { throw DaemonError("none of the batches exist for site \(site)") }
    }
}
