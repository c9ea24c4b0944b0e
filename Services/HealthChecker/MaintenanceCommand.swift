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

    static func output(_ state: Maintenance.State?, json: Bool) {
        if json {
            var o: [String: Any] = ["maintenance": state != nil]
            if let state { o["reason"] = state.reason; o["since"] = ISO8601.format(state.since); o["by"] = state.by }
            printJSON(o)
        } else if let state {
            print("maintenance is on since \(ISO8601.format(state.since)) (by \(state.by)): \(state.reason)")
        } else {
            print("maintenance is off")
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
        static let configuration = CommandConfiguration(abstract: "Print whether maintenance mode is on.")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options, needsPostgres: false) { cli in
                MaintenanceCommand.output(try await Maintenance(redis: cli.redis).read(), json: json)
            }
        }
    }
}
