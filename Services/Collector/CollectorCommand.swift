import ArgumentParser
import TributaryRuntime

/// The `collector` executable. Receives events over the Segment HTTP tracking API, saves each raw batch durably in the `collector` schema and enqueues it on `hydrate`.
public struct CollectorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Receives events over the Segment HTTP tracking API, saves each raw batch durably in the collector schema and enqueues it on hydrate.",
        version: TributaryVersion.current,
        subcommands: [Run.self, Migrate.self, SitesCommand.self, ReplayCommand.self],
        defaultSubcommand: Run.self)

    public init() {}

    /// `collector run`: migrate, then serve until SIGTERM/SIGINT.
    public struct Run: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Migrate the collector schema, then run the daemon until SIGTERM or SIGINT.")

        @OptionGroup var options: CommonOptions

        public init() {}

        public func run() async throws {
            let reader = try await ConfigLoader.load(path: options.config)
            let context = try DaemonContext.make(daemon: .collector, reader: reader)
            // The collector keeps accepting while PostgreSQL is down (it spools), even at start-up.
            try await DaemonRunner.run(context: context, migrator: CollectorSchema.migrator,
                                       services: try await CollectorBuilder.services(context: context),
                                       migration: .whenReachable)
        }
    }

    /// `collector migrate`: apply the collector schema's migrations and exit.
    public struct Migrate: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Apply the collector schema's migrations as the daemon's own role, then exit.")

        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        public init() {}

        public func run() async throws {
            try await MigrateCommand.run(daemon: .collector, migrator: CollectorSchema.migrator,
                                         configPath: options.config, json: json)
        }
    }
}
