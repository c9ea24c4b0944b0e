import ArgumentParser
import TributaryRuntime

/// The `hydration` executable. Consumes raw batches from `hydrate`, validates, deduplicates and enriches each event, stores it in the `hydration` schema and routes it to `aggregate` and `forward:<sink>` queues.
public struct HydrationCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hydration",
        abstract: "Consumes raw batches from hydrate, validates, deduplicates and enriches each event, stores it in the hydration schema and routes it to aggregate and forward:<sink> queues.",
        version: TributaryVersion.current,
        subcommands: [Run.self, Migrate.self],
        defaultSubcommand: Run.self)

    public init() {}

    /// `hydration run`: migrate, then serve until SIGTERM/SIGINT.
    public struct Run: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Migrate the hydration schema, then run the daemon until SIGTERM or SIGINT.")

        @OptionGroup var options: CommonOptions

        public init() {}

        public func run() async throws {
            let reader = try await ConfigLoader.load(path: options.config)
            // Each worker's consumer blocks a thread of the pool while it waits for work.
            let workers = try HydrationConfiguration(reader: reader).concurrency
            let context = try DaemonContext.make(daemon: .hydration, reader: reader, extraThreads: workers + 2)
            try await DaemonRunner.run(context: context, migrator: HydrationSchema.migrator,
                                       services: try await HydrationBuilder.services(context: context))
        }
    }

    /// `hydration migrate`: apply the hydration schema's migrations and exit.
    public struct Migrate: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Apply the hydration schema's migrations as the daemon's own role, then exit.")

        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        public init() {}

        public func run() async throws {
            try await MigrateCommand.run(daemon: .hydration, migrator: HydrationSchema.migrator,
                                         configPath: options.config, json: json)
        }
    }
}
