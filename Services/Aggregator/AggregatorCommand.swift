import ArgumentParser
import TributaryRuntime

/// The `aggregator` executable. Consumes hydrated events from `aggregate` and rolls them up into per-site statistics in the `aggregator` schema, exactly once per batch.
public struct AggregatorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "aggregator",
        abstract: "Consumes hydrated events from aggregate and rolls them up into per-site statistics in the aggregator schema, exactly once per batch.",
        version: TributaryVersion.current,
        subcommands: [Run.self, Migrate.self, RebuildCommand.self, BuildSpansCommand.self],
        defaultSubcommand: Run.self)

    public init() {}

    /// `aggregator run`: migrate, then serve until SIGTERM/SIGINT.
    public struct Run: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Migrate the aggregator schema, then run the daemon until SIGTERM or SIGINT.")

        @OptionGroup var options: CommonOptions

        public init() {}

        public func run() async throws {
            let reader = try await ConfigLoader.load(path: options.config)
            // Each worker's consumer blocks a thread of the pool while it waits for work.
            let workers = try AggregatorConfiguration(reader: reader).concurrency
            let context = try DaemonContext.make(daemon: .aggregator, reader: reader, extraThreads: workers + 2)
            let built = try await AggregatorBuilder.build(context: context)
            try await DaemonRunner.run(context: context, migrator: AggregatorSchema.migrator, services: built.services,
                                       readiness: built.readiness)
        }
    }

    /// `aggregator migrate`: apply the aggregator schema's migrations and exit.
    public struct Migrate: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Apply the aggregator schema's migrations as the daemon's own role, then exit.")

        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        public init() {}

        public func run() async throws {
            try await MigrateCommand.run(daemon: .aggregator, migrator: AggregatorSchema.migrator,
                                         configPath: options.config, json: json)
        }
    }
}
