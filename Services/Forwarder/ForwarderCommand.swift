import ArgumentParser
import TributaryRuntime

/// The `forwarder` executable. Consumes `forward:<sink>` queues and delivers events to third-party sinks, recording every attempt in the `forwarder` schema.
public struct ForwarderCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "forwarder",
        abstract: "Consumes forward:<sink> queues and delivers events to third-party sinks, recording every attempt in the forwarder schema.",
        version: TributaryVersion.current,
        subcommands: [Run.self, Migrate.self, SinksCommand.self, DeadLettersCommand.self],
        defaultSubcommand: Run.self)

    public init() {}

    /// `forwarder run`: migrate, then serve until SIGTERM/SIGINT.
    public struct Run: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Migrate the forwarder schema, then run the daemon until SIGTERM or SIGINT.")

        @OptionGroup var options: CommonOptions

        public init() {}

        public func run() async throws {
            let reader = try await ConfigLoader.load(path: options.config)
            let context = try DaemonContext.make(daemon: .forwarder, reader: reader)
            let built = try await ForwarderBuilder.build(context: context)
            try await DaemonRunner.run(context: context, migrator: ForwarderSchema.migrator, services: built.services,
                                       readiness: built.readiness)
        }
    }

    /// `forwarder migrate`: apply the forwarder schema's migrations and exit.
    public struct Migrate: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Apply the forwarder schema's migrations as the daemon's own role, then exit.")

        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        public init() {}

        public func run() async throws {
            try await MigrateCommand.run(daemon: .forwarder, migrator: ForwarderSchema.migrator,
                                         configPath: options.config, json: json)
        }
    }
}
