import ArgumentParser

/// Options every daemon command takes.
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The config file (JSON or YAML) shared by all daemons; defaults to $TRIBUTARY_CONFIG.",
        valueName: "path"))
    public var config: String?

    public init() {}
}
