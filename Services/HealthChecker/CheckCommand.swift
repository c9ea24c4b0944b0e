import ArgumentParser
import Foundation
import TributaryModels
import TributaryRuntime

/// `health-checker check --once`: every check, once, as a table (or JSON); exits 1 when
/// any check fails or cannot run (for cron and for ops).
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Run every check once, print a table and exit non-zero when something fails.",
        discussion: "Reads what the daemon reads (PostgreSQL and Redis); sends no alerts. Exit status: 0 all pass, 1 a check fails or cannot run.")

    @OptionGroup var options: CommonOptions
    @Flag(help: "Run the checks once and exit (the daemon runs them continuously).") var once = false
    @Flag(help: "Print the results as JSON.") var json = false
    @Flag(help: "Also list the checks that pass.") var all = false

    func run() async throws {
        var round: CheckRound?
        try await HealthCheckerCLI.with(options, needsPostgres: false) { cli in
            let probe = PipelineProbe(postgres: cli.postgres, redis: cli.redis, configuration: cli.configuration, logger: cli.logger)
            round = await probe.runAll(forceTies: true)
        }
        guard let round else { return }
        let failing = round.results.filter { $0.status != .ok }
        if json {
            printJSON([
                "status": round.maintenance != nil ? "maintenance" : failing.isEmpty ? "ok" : "failing",
                "checkedAt": ISO8601.format(round.at),
                "checks": round.results.map { r -> [String: Any] in
                    var o: [String: Any] = ["name": r.name, "kind": r.kind.rawValue, "status": r.status.rawValue,
                                            "summary": r.summary, "runbook": "docs/runbooks/\(r.kind.runbook)",
                                            "detail": (try? JSONSerialization.jsonObject(with: Data(JSONValue.object(r.detail).serialized()))) ?? [:]]
                    if let cause = r.cause, r.status != .ok { o["groupedUnder"] = cause }
                    return o
                },
            ])
        } else {
            let shown = all ? round.results : round.results.filter { $0.status != .ok }
            let width = max(12, shown.map(\.name.count).max() ?? 0)
            print("STATUS   " + "CHECK".padding(toLength: width, withPad: " ", startingAt: 0) + "  SUMMARY")
            for r in shown.sorted(by: { ($0.status.rawValue, $0.name) < ($1.status.rawValue, $1.name) }) {
                let grouped = r.status != .ok ? r.cause.map { " [grouped under \($0)]" } ?? "" : ""
                print(r.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                      + r.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + r.summary + grouped)
            }
            let passing = round.results.count - failing.count
            print("\(passing) of \(round.results.count) checks pass" + (round.maintenance != nil ? " (maintenance mode is on)" : ""))
        }
        if !failing.isEmpty {
            FileHandle.standardError.write(Data("health-checker: \(failing.count) check(s) failing: \(failing.map(\.name).joined(separator: ", "))\n".utf8))
            throw ExitCode(1)
        }
    }
}
