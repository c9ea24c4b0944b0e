import ArgumentParser
import TributaryRuntime

/// The `health-checker` executable. Watches heartbeats, queues and every schema (read-only), writes check results and alerts to the `health` schema and wakes on-call.
public struct HealthCheckerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "health-checker",
        abstract: "Watches heartbeats, queues and every schema (read-only), writes check results and alerts to the health schema and wakes on-call.",
        version: TributaryVersion.current,
        subcommands: [Run.self, Migrate.self, CheckCommand.self, TraceCommand.self, ReceiversCommand.self, MaintenanceCommand.self],
        defaultSubcommand: Run.self)

    public init() {}

    /// `health-checker run`: migrate, then serve until SIGTERM/SIGINT.
    public struct Run: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Migrate the health schema, then run the daemon until SIGTERM or SIGINT.",
            discussion: "Starts while PostgreSQL is down (it reports that), and migrates once PostgreSQL is back.")

        @OptionGroup var options: CommonOptions

        public init() {}

        public func run() async throws {
            let reader = try await ConfigLoader.load(path: options.config)
            let context = try DaemonContext.make(daemon: .healthChecker, reader: reader)
            try await DaemonRunner.run(context: context, migrator: HealthCheckerSchema.migrator,
                                       services: try HealthCheckerBuilder.services(context: context),
                                       // It must start (and report) while PostgreSQL is down.
                                       migration: .whenReachable)
        }
    }

    /// `health-checker migrate`: apply the health schema's migrations and exit.
    public struct Migrate: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Apply the health schema's migrations as the daemon's own role, then exit.")

        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        public init() {}

        public func run() async throws {
            try await MigrateCommand.run(daemon: .healthChecker, migrator: HealthCheckerSchema.migrator,
                                         configPath: options.config, json: json)
        }
    }
}
