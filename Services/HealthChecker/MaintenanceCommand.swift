import ArgumentParser
import Foundation
import TributaryModels
import TributaryRuntime

/// `health-checker maintenance on|off|status`: the switch lives in Redis, so it works
/// while PostgreSQL is down.
struct MaintenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance", abstract: "Turn maintenance mode on or off (alerts silenced, status page says so).",
        subcommands: [On.self, Off.self, Status.self])

    /// Per pausing daemon: its live instances, and how many of them report being paused.
    typealias Paused = [(service: String, paused: Int, live: Int)]

    static func output(_ state: Maintenance.State?, paused: Paused? = nil, json: Bool) {
        if json {
            var o: [String: Any] = ["maintenance": state != nil]
            if let state { o["reason"] = state.reason; o["since"] = ISO8601.format(state.since); o["by"] = state.by }
            if let paused {
                o["instances"] = paused.map { ["service": $0.service, "paused": $0.paused, "live": $0.live] }
            }
            printJSON(o)
        } else {
            if let state {
                print("maintenance is on since \(ISO8601.format(state.since)) (by \(state.by)): \(state.reason)")
            } else {
                print("maintenance is off")
            }
            for p in paused ?? [] { print("  \(p.service): \(p.paused) of \(p.live) live instance(s) paused") }
        }
    }

    /// Which live worker instances report being paused (their heartbeats; a change shows
    /// within `maintenance.pollSeconds` plus one heartbeat interval).
    static func paused(_ cli: HealthCheckerCLI) async throws -> Paused {
        let probe = PipelineProbe(postgres: cli.postgres, redis: cli.redis, configuration: cli.configuration, logger: cli.logger)
        let instances = try await probe.readRedis().instances.compactMap(\.heartbeat)
        return DaemonName.allCases.filter(\.pausesForMaintenance).map { daemon in
            let live = instances.filter { $0.service == daemon.rawValue }
            return (daemon.rawValue, live.filter(\.isPaused).count, live.count)
        }
    }

    struct On: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Turn maintenance mode on.")
        @OptionGroup var options: CommonOptions
        @Option(help: "Why (shown on the status page).") var reason = "maintenance"
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard (1...500).contains(reason.count) else { throw ValidationError("--reason must be 1-500 characters") }
        }

        func run() async throws {
            try await HealthCheckerCLI.with(options, needsPostgres: false) { cli in
                let user = ProcessInfo.processInfo.environment["USER"] ?? "unknown"
                let state = try await Maintenance(redis: cli.redis).turnOn(reason: reason, by: "\(user)@\(ProcessInfo.processInfo.hostName)")
                MaintenanceCommand.output(state, json: json)
            }
        }
    }

    struct Off: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Turn maintenance mode off.")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options, needsPostgres: false) { cli in
                try await Maintenance(redis: cli.redis).turnOff()
                MaintenanceCommand.output(nil, json: json)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print whether maintenance mode is on, and how many worker instances have paused.")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options, needsPostgres: false) { cli in
                let state = try await Maintenance(redis: cli.redis).read()
                MaintenanceCommand.output(state, paused: try await MaintenanceCommand.paused(cli), json: json)
            }
        }
    }
}
