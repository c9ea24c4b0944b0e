import ArgumentParser
import Foundation
import TributaryHTTP
import TributaryPostgres
import TributaryRuntime

/// `tributary-load verify <record>`: what every stage made of what was acknowledged.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every stage against a run's record; exit 1 on anything lost, duplicated or mis-counted.",
        discussion: """
            Reads the pipeline's schemas as the health-checker's role (any role that can read them: \
            `--config` or TRIBUTARY_CONFIG). The aggregates are recomputed from the record alone. With --sink-ids, \
            the deliveries are counted at the receiving server (a JSON array of [webhook-id, messageId] pairs).
            """)

    @OptionGroup var options: CommonOptions
    @Argument(help: "The record a run wrote.") var record: String
    @Option(help: "URL of the counting server's [webhook-id, messageId] list for the sink.") var sinkIds: String?
    @Option(help: "The sink's id (its dead letters count as settled).") var sinkId: Int64?
    @Option(help: "Wait up to this many seconds for the stages to catch up (0: check once).") var wait = 0.0
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let file = try RecordFile(path: record)
        let reader = try await ConfigLoader.load(path: options.config)
        let configuration = try RuntimeConfiguration(daemon: .healthChecker, reader: reader)
        let pool = NIOThreadPoolBox(threads: 3)
        defer { pool.stop() }
        let db = PostgresClient(configuration: configuration.postgres, maximumConnections: 1, threadPool: pool.pool)
        defer { db.close() }
        let http = HTTPClient(threadPool: pool.pool)
        defer { http.close() }
        let verifier = Verifier(record: file, db: db, http: http, sinkIDsURL: sinkIds, sinkID: sinkId)
        let started = ContinuousClock.now
        var stages: [Verifier.Stage] = []
        var lastProgress = (ContinuousClock.now, -1)
        while true {
            let round = ContinuousClock.now
            do {
                stages = try await verifier.verify()
            } catch let error as PostgresError where error.code == .connectionFailed {
                throw DaemonError("cannot connect to PostgreSQL at \(configuration.postgres.host):\(configuration.postgres.port)")
            }
            let okNow = stages.reduce(0) { $0 + $1.ok + $1.progress }
            if stages.allSatisfy(\.isClean) || wait <= 0 || ContinuousClock.now - started > .seconds(wait) { break }
            // Keep waiting while the stages make progress; give up after two minutes without any.
            if okNow > lastProgress.1 { lastProgress = (.now, okNow) }
            if ContinuousClock.now - lastProgress.0 > .seconds(120) { break }
            FileHandle.standardError.write(Data("waiting for the stages: \(stages.map { "\($0.name) \($0.ok)/\($0.expected)" }.joined(separator: ", "))\n".utf8))
            // As long again as a check took (at least 2 s): checking must not slow the pipeline down.
            try await Task.sleep(for: max(.seconds(2), ContinuousClock.now - round))
        }
        let events = file.batches.filter(\.acked).reduce(0) { $0 + $1.events.count }
        if json {
            printJSON([
                "record": record, "acknowledgedEvents": events, "ok": stages.allSatisfy(\.isClean),
                "stages": stages.map { ["stage": $0.name, "expected": $0.expected, "ok": $0.ok, "lost": $0.lost,
                                        "duplicated": $0.duplicated, "miscounted": $0.miscounted, "notes": $0.notes] as [String: Any] },
            ])
        } else {
            print("\(events) acknowledged events in \(file.batches.filter(\.acked).count) batches, \(file.header.sites.count) sites")
            print("STAGE         EXPECTED        OK      LOST  DUPLICATED  MISCOUNTED")
            for s in stages {
                print(s.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                      + [s.expected, s.ok, s.lost].map { String($0).leftPad(10) }.joined()
                      + String(s.duplicated).leftPad(12) + String(s.miscounted).leftPad(12))
                for note in s.notes.prefix(5) where !s.isClean { print("  \(note)") }
            }
        }
        let bad = stages.filter { !$0.isClean }
        if !bad.isEmpty {
            throw DaemonError("not everything ties: " + bad.map { "\($0.name) lost \($0.lost), duplicated \($0.duplicated), mis-counted \($0.miscounted)" }.joined(separator: "; "))
        }
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
