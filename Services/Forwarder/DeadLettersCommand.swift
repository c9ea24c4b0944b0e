import ArgumentParser
import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// `forwarder dead-letters …`: see, retry and purge the events given up on.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters", abstract: "List, show, retry and purge events that could not be delivered.",
        subcommands: [List.self, Show.self, Retry.self, Purge.self])

    /// Which dead letters a command acts on.
    struct Filter: ParsableArguments {
        @Option(help: "Only this sink (id or name).") var sink: String?
        @Option(help: "Only this site id.") var site: Int64?
        @Option(help: "Only those that died at or after this time (ISO 8601).") var since: String?
        @Option(help: "Only those that died before this time (ISO 8601).") var until: String?
        @Option(help: "Only this reason: rejected, expired or dropped.") var reason: String?

        func validate() throws {
            if let since, ISO8601.parse(since) == nil { throw ValidationError("--since \(since) is not an ISO 8601 time") }
            if let until, ISO8601.parse(until) == nil { throw ValidationError("--until \(until) is not an ISO 8601 time") }
            if let reason, !["rejected", "expired", "dropped"].contains(reason) {
                throw ValidationError("--reason must be rejected, expired or dropped")
            }
        }

        var isEmpty: Bool { sink == nil && site == nil && since == nil && until == nil && reason == nil }

        /// The WHERE clause and its parameters.
        func clause(_ cli: ForwarderCLI) async throws -> (String, [any PostgresEncodable]) {
            var conditions = ["true"]
            var parameters: [any PostgresEncodable] = []
            func add(_ sql: String, _ value: any PostgresEncodable) {
                parameters.append(value)
                conditions.append(sql.replacingOccurrences(of: "$?", with: "$\(parameters.count)"))
            }
            if let sink { add("sink_id = $?", try await cli.requireSink(sink).id) }
            if let site { add("site_id = $?", site) }
            if let since, let date = ISO8601.parse(since) { add("dead_at >= $?", date) }
            if let until, let date = ISO8601.parse(until) { add("dead_at < $?", date) }
            if let reason { add("reason = $?", reason) }
            return (conditions.joined(separator: " AND "), parameters)
        }
    }

    static func summary(_ row: PostgresRow, full: Bool) throws -> [String: Any] {
        var o: [String: Any] = [
            "deadLetterId": try row.int("dead_letter_id") ?? 0, "siteId": try row.int("site_id") ?? 0,
            "sinkId": try row.int("sink_id") ?? 0, "messageId": try row.string("message_id") ?? "",
            "eventId": try row.int("event_id") ?? 0, "reason": try row.string("reason") ?? "",
            "attempts": try row.int("attempts") ?? 0, "lastError": try row.string("last_error") ?? "",
        ]
        if let status = try row.int("last_status") { o["lastStatus"] = status }
        if let at = try row.date("dead_at") { o["deadAt"] = ISO8601Format.string(at) }
        if let at = try row.date("first_attempt_at") { o["firstAttemptAt"] = ISO8601Format.string(at) }
        if full {
            if let response = try row.string("last_response") { o["lastResponse"] = response }
            if let text = try row.string("event"), let data = text.data(using: .utf8),
               let event = try? JSONSerialization.jsonObject(with: data) { o["event"] = event }
        }
        return o
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, newest first.")
        @OptionGroup var options: CommonOptions
        @OptionGroup var filter: Filter
        @Option(help: "At most this many (1-10000).") var limit = 100
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be 1-10000") }
        }

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                let (clause, parameters) = try await filter.clause(cli)
                let rows = try await cli.postgres.query("""
                    SELECT * FROM forwarder.dead_letters WHERE \(clause) ORDER BY dead_at DESC, dead_letter_id DESC LIMIT \(limit)
                    """, parameters).rows
                let items = try rows.map { try DeadLettersCommand.summary($0, full: false) }
                if json { printJSON(items); return }
                print("ID\tSINK\tSITE\tREASON\tATTEMPTS\tDEAD AT\tMESSAGE ID\tLAST ERROR")
                for o in items {
                    print("\(o["deadLetterId"]!)\t\(o["sinkId"]!)\t\(o["siteId"]!)\t\(o["reason"]!)\t\(o["attempts"]!)\t\(o["deadAt"] ?? "")\t\(o["messageId"]!)\t\(o["lastError"]!)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter: the event, the last error and response.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The dead letter's id.") var id: Int64
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                guard let row = try await cli.postgres.query("SELECT * FROM forwarder.dead_letters WHERE dead_letter_id = $1",
                                                             [id]).first else { throw DaemonError("no dead letter \(id)") }
                let o = try DeadLettersCommand.summary(row, full: true)
                if json { printJSON(o); return }
                for key in o.keys.sorted() { print("\(key): \(o[key]!)") }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send dead letters to their sink's queue again (by id, or all that match the filters).")
        @OptionGroup var options: CommonOptions
        @OptionGroup var filter: Filter
        @Argument(help: "Dead letter ids (none: every one matching the filters).") var ids: [Int64] = []
        @Flag(help: "Retry every dead letter when no filter or id is given.") var all = false
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard !ids.isEmpty || !filter.isEmpty || all else { throw ValidationError("give ids, a filter, or --all") }
        }

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                var (clause, parameters) = try await filter.clause(cli)
                if !ids.isEmpty {
                    parameters.append(PostgresArray.ints(ids))
                    clause += " AND dead_letter_id = ANY($\(parameters.count)::bigint[])"
                }
                var retried = 0
                var lastID: Int64 = 0
                let sinks = Set(try await SinkStore(postgres: cli.postgres).list().map(\.id))
                while true {
                    // In slices: each slice is queued first, then deleted, so a crash between
                    // the two sends events twice (deduplicated by the delivered marks), never zero times.
                    let rows = try await cli.postgres.query("""
                        SELECT dead_letter_id, site_id, sink_id, event FROM forwarder.dead_letters WHERE \(clause)
                        AND dead_letter_id > $\(parameters.count + 1) ORDER BY dead_letter_id LIMIT 500
                        """, parameters + [lastID]).rows
                    guard !rows.isEmpty else { break }
                    var groups: [[Int64]: [[String: JSONValue]]] = [:]
                    var done: [(Int64, Int64)] = []
                    for row in rows {
                        guard let id = try row.int("dead_letter_id"), let site = try row.int("site_id"),
                              let sink = try row.int("sink_id") else { continue }
                        lastID = id
                        guard sinks.contains(sink), let text = try row.string("event"),
                              var o = try? JSONValue.parse(Array(text.utf8)).objectValue else { continue }
                        o["siteId"] = nil
                        groups[[sink, site], default: []].append(o)
                        done.append((site, id))
                    }
                    for (key, events) in groups {
                        let message = JSONValue.object([
                            "version": .int(1), "batchId": .int(0), "siteId": .int(key[1]), "sinkId": .int(key[0]),
                            "events": .array(events.map(JSONValue.object)),
                        ]).serialized()
                        try await ReliableQueue(name: QueueName.forward(sinkID: key[0]), connection: cli.redis)
                            .push(message, site: String(key[1]))
                    }
                    if !done.isEmpty {
                        try await cli.postgres.query("""
                            DELETE FROM forwarder.dead_letters d USING unnest($1::bigint[], $2::bigint[]) AS x(s, i)
                            WHERE d.site_id = x.s AND d.dead_letter_id = x.i
                            """, [PostgresArray.ints(done.map(\.0)), PostgresArray.ints(done.map(\.1))])
                    }
                    retried += done.count
                    if !json { FileHandle.standardError.write(Data("queued \(retried) so far\n".utf8)) }
                }
                if json { printJSON(["retried": retried]) } else { print("\(retried) dead letter(s) queued again") }
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters that match the filters (or --all).")
        @OptionGroup var options: CommonOptions
        @OptionGroup var filter: Filter
        @Flag(help: "Delete every dead letter when no filter is given.") var all = false
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard !filter.isEmpty || all else { throw ValidationError("give a filter or --all") }
        }

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                let (clause, parameters) = try await filter.clause(cli)
                let n = try await cli.postgres.query("DELETE FROM forwarder.dead_letters WHERE \(clause)", parameters).affectedRows
                if json { printJSON(["purged": n]) } else { print("\(n) dead letter(s) purged") }
            }
        }
    }
}
