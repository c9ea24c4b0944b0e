import ArgumentParser
import Foundation
import TributaryModels
import TributaryRuntime

/// `health-checker trace <id>`: one event's journey through every stage (read-only).
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Show where one event went: received, stored or rejected or deduplicated, aggregated, delivered to each sink.",
        discussion: """
            The id is the event's messageId (as the client sent it) or its event id (digits, as hydration numbered it). \
            A stage the event has not passed says where it stopped: still queued, in flight with a live or dead consumer, \
            retrying, dead-lettered, or missing (with the replay command that fills the gap). Reads every schema; changes nothing. \
            Exit status: 0 the event was found (whatever its state), 1 it was not found or the lookup failed.
            """)

    @OptionGroup var options: CommonOptions
    @Argument(help: "The event's messageId or event id.") var id: String
    @Option(help: "The site the event belongs to (needed when several sites used the same messageId).") var site: Int64?
    @Flag(help: "Print the trace as JSON.") var json = false

    func validate() throws {
        guard !id.isEmpty, id.utf8.count <= 1000 else { throw ValidationError("the id must be 1-1000 characters") }
        if let site, site <= 0 { throw ValidationError("--site must be a site id") }
    }

    func run() async throws {
        try await HealthCheckerCLI.with(options) { cli in
            let tracer = EventTracer(postgres: cli.postgres, redis: cli.redis, searchDays: cli.configuration.traceSearchDays,
                                     maxQueueScan: cli.configuration.traceMaxQueueScan)
            let trace: EventTrace
            do { trace = try await tracer.trace(id, site: site) } catch let failure as EventTracer.Failure {
                throw DaemonError(failure.description)
            }
            if json {
                print(String(decoding: trace.json.serialized(), as: UTF8.self))
            } else {
                print(trace.text)
            }
        }
    }
}
