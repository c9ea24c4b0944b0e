import TributaryHTTP
import ArgumentParser
import Foundation
import TributaryModels
import TributaryPostgres
import TributaryRedis
import TributaryRuntime

/// `forwarder sinks …`: define where events go. Running hydration and forwarder
/// instances pick changes up within seconds (`*.sinks.refreshSeconds`).
struct SinksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sinks", abstract: "Manage the sinks events are forwarded to.",
        subcommands: [Add.self, List.self, Show.self, Update.self, Disable.self, Enable.self, Remove.self])

    /// The options a sink's definition shares between `add` and `update`.
    struct Definition: ParsableArguments {
        @Option(help: "Where to deliver: http(s)://… (webhook, mixpanel, segment) or udp://host:port (statsd).")
        var url: String?
        @Option(name: .customLong("site"), help: "A site id whose events go to the sink (repeatable; none = every site).")
        var sites: [Int64] = []
        @Option(name: .customLong("type-filter"), help: "An event type the sink takes: track, page, screen, identify, group, alias, metric (repeatable; none = every type the sink's type takes).")
        var typeFilters: [String] = []
        @Option(name: .customLong("event"), help: "An event name the sink takes (repeatable; none = every name).")
        var events: [String] = []
        @Option(help: "A file holding the sink's secret: webhook signing secret (whsec_…), Mixpanel project secret, Segment write key.")
        var secretFile: String?
        @Option(help: "The most events per request (the sink type's limit is the ceiling).") var batchSize: Int?
        @Option(help: "How long a batch may wait to fill, in milliseconds.") var maxWaitMs: Int?
        @Option(help: "Requests in flight at once, per forwarder instance.") var concurrency: Int?
        @Option(help: "A request's timeout, in milliseconds.") var timeoutMs: Int?

        func validateLimits(type: SinkType) throws {
            if let batchSize, !(1...Sink.maximumBatchSize(type)).contains(batchSize) {
                throw ValidationError("--batch-size must be 1-\(Sink.maximumBatchSize(type)) for a \(type.rawValue) sink")
            }
            if let maxWaitMs, !(0...60_000).contains(maxWaitMs) { throw ValidationError("--max-wait-ms must be 0-60000") }
            if let concurrency, !(1...64).contains(concurrency) { throw ValidationError("--concurrency must be 1-64") }
            if let timeoutMs, !(100...300_000).contains(timeoutMs) { throw ValidationError("--timeout-ms must be 100-300000") }
            for t in typeFilters {
                guard let eventType = EventType(rawValue: t) else {
                    throw ValidationError("--type-filter \(t) is not one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if !type.acceptedTypes.contains(eventType) && !(type == .statsd) {
                    throw ValidationError("a \(type.rawValue) sink cannot take \(t) events")
                }
            }
            for e in events where !(1...200).contains(e.count) { throw ValidationError("an --event name must be 1-200 characters") }
            for s in sites where s <= 0 { throw ValidationError("--site must be a site id") }
        }

        /// Applies these options to `sink`.
        func apply(to sink: inout Sink) {
            if let url { sink.url = url }
            if !sites.isEmpty { sink.sites = sites }
            if !typeFilters.isEmpty { sink.eventTypes = typeFilters }
            if !events.isEmpty { sink.eventNames = events }
            if let secretFile { sink.secretFile = (secretFile as NSString).standardizingPath.hasPrefix("/") ? secretFile
                : FileManager.default.currentDirectoryPath + "/" + secretFile }
            if let batchSize { sink.settings.batchSize = batchSize }
            if let maxWaitMs { sink.settings.maxWaitMs = maxWaitMs }
            if let concurrency { sink.settings.concurrency = concurrency }
            if let timeoutMs { sink.settings.timeoutMs = timeoutMs }
        }
    }

    /// Checks a sink's URL and secret file before it is stored; throws a one-line reason.
    static func check(_ sink: Sink) async throws {
        let adapter = SinkAdapters.adapter(for: sink.type)
        do {
            _ = try await OutboundGuard(threadPool: nil, cacheSeconds: 0).check(sink.url, schemes: adapter.schemes,
                                                                                allowPrivate: sink.allowPrivateNetwork)
        } catch {
            throw DaemonError("\(error)")
        }
        var secret: String?
        if let path = sink.secretFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw DaemonError("cannot read the secret file \(path)")
            }
            secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        do { try adapter.validate(secret: secret) } catch { throw DaemonError("\(error)") }
    }

    static func output(_ sink: Sink, json: Bool, verb: String) {
        if json { printJSON(sink.summary) } else { print("sink \(sink.id) (\(sink.name)) \(verb)") }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a sink; events are routed to it within seconds.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's name (unique, 1-200 characters).") var name: String
        @Option(help: "webhook, mixpanel, segment or statsd.") var type: String
        @OptionGroup var definition: Definition
        @Flag(help: "Allow private, loopback and link-local addresses (off by default).") var allowPrivateNetwork = false
        @Flag(help: "statsd: also count every other event routed to it as a counter.") var eventCounters = false
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard (1...200).contains(name.count), Int64(name) == nil else {
                throw ValidationError("the name must be 1-200 characters and not a number")
            }
            guard let sinkType = SinkType(rawValue: type) else {
                throw ValidationError("--type must be webhook, mixpanel, segment or statsd")
            }
            guard definition.url != nil else { throw ValidationError("--url is required") }
            if eventCounters && sinkType != .statsd { throw ValidationError("--event-counters is for statsd sinks") }
            try definition.validateLimits(type: sinkType)
        }

        func run() async throws {
            var sink = Sink(id: 0, name: name, type: SinkType(rawValue: type)!, url: "", sites: [], eventTypes: [],
                            eventNames: [], secretFile: nil, allowPrivateNetwork: allowPrivateNetwork,
                            settings: .init(eventCounters: eventCounters ? true : nil), enabled: true)
            definition.apply(to: &sink)
            try await SinksCommand.check(sink)
            try await ForwarderCLI.with(options) { cli in
                let store = SinkStore(postgres: cli.postgres)
                if try await store.find(name) != nil { throw DaemonError("a sink named \(name) already exists") }
                sink.id = try await store.add(sink)
                SinksCommand.output(try await cli.requireSink(String(sink.id)), json: json, verb: "added")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the sinks, with their queue depth and parked retries.")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                var rows: [[String: Any]] = []
                for sink in try await SinkStore(postgres: cli.postgres).list() {
                    var o = sink.summary
                    o["queued"] = try await ReliableQueue(name: QueueName.forward(sinkID: sink.id), connection: cli.redis).totalDepth()
                    o["retrying"] = try await SinkStore(postgres: cli.postgres).retryCounts(sink.id).events
                    rows.append(o)
                }
                if json { printJSON(rows); return }
                print("ID\tNAME\tTYPE\tENABLED\tQUEUED\tRETRYING\tURL")
                for o in rows {
                    print("\(o["sinkId"]!)\t\(o["name"]!)\t\(o["type"]!)\t\(o["enabled"]!)\t\(o["queued"]!)\t\(o["retrying"]!)\t\(o["url"]!)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a sink: rules, limits, queue, retries and dead letters.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's id or name.") var sink: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                let s = try await cli.requireSink(sink)
                var o = s.summary
                o["queued"] = try await ReliableQueue(name: QueueName.forward(sinkID: s.id), connection: cli.redis).totalDepth()
                let retries = try await SinkStore(postgres: cli.postgres).retryCounts(s.id)
                o["retrying"] = retries.events
                let dead = try await cli.postgres.query("SELECT count(*) AS n FROM forwarder.dead_letters WHERE sink_id = $1", [s.id])
                o["deadLetters"] = try dead.first?.int("n") ?? 0
                let delivered = try await cli.postgres.query("""
                    SELECT count(*) AS n, max(delivered_at) AS last FROM forwarder.deliveries
                    WHERE sink_id = $1 AND delivered_at > now() - interval '1 day'
                    """, [s.id]).first
                o["deliveredLastDay"] = try delivered?.int("n") ?? 0
                if let last = try delivered?.date("last") { o["lastDeliveredAt"] = ISO8601Format.string(last) }
                if json { printJSON(o); return }
                for key in o.keys.sorted() { print("\(key): \(o[key]!)") }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a sink; running daemons pick it up within seconds.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's id or name.") var sink: String
        @Option(help: "A new name.") var name: String?
        @OptionGroup var definition: Definition
        @Flag(help: "Every site again (clears --site).") var allSites = false
        @Flag(help: "Every event type again (clears --type-filter).") var allTypes = false
        @Flag(help: "Every event name again (clears --event).") var allEvents = false
        @Option(help: "Allow private, loopback and link-local addresses (true or false).") var allowPrivateNetwork: Bool?
        @Option(help: "statsd: count other events as counters (true or false).") var eventCounters: Bool?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                var s = try await cli.requireSink(sink)
                try definition.validateLimits(type: s.type)
                if let name {
                    guard (1...200).contains(name.count), Int64(name) == nil else { throw DaemonError("the name must be 1-200 characters and not a number") }
                    s.name = name
                }
                definition.apply(to: &s)
                if allSites { s.sites = [] }
                if allTypes { s.eventTypes = [] }
                if allEvents { s.eventNames = [] }
                if let allowPrivateNetwork { s.allowPrivateNetwork = allowPrivateNetwork }
                if let eventCounters {
                    guard s.type == .statsd else { throw DaemonError("--event-counters is for statsd sinks") }
                    s.settings.eventCounters = eventCounters
                }
                try await SinksCommand.check(s)
                try await SinkStore(postgres: cli.postgres).update(s)
                SinksCommand.output(try await cli.requireSink(String(s.id)), json: json, verb: "updated")
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a sink: no new events are routed to it and delivery pauses; what is queued waits.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's id or name.") var sink: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws { try await SinksCommand.setEnabled(false, sink, options, json) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled sink: routing and delivery resume.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's id or name.") var sink: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws { try await SinksCommand.setEnabled(true, sink, options, json) }
    }

    static func setEnabled(_ enabled: Bool, _ sink: String, _ options: CommonOptions, _ json: Bool) async throws {
        try await ForwarderCLI.with(options) { cli in
            let s = try await cli.requireSink(sink)
            try await SinkStore(postgres: cli.postgres).setEnabled(s.id, enabled)
            output(try await cli.requireSink(String(s.id)), json: json, verb: enabled ? "enabled" : "disabled")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a sink. Refused while events wait for it unless --force (which drops them).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The sink's id or name.") var sink: String
        @Flag(help: "Drop the events still queued or parked for retry.") var force = false
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await ForwarderCLI.with(options) { cli in
                let s = try await cli.requireSink(sink)
                let queue = ReliableQueue(name: QueueName.forward(sinkID: s.id), connection: cli.redis)
                let queued = try await queue.totalDepth()
                let retrying = try await SinkStore(postgres: cli.postgres).retryCounts(s.id).events
                if (queued > 0 || retrying > 0) && !force {
                    throw DaemonError("sink \(s.id) still has \(queued) queued item(s) and \(retrying) event(s) parked for retry; "
                                      + "disable it and wait, or give --force to drop them")
                }
                let dropped = try await SinkStore(postgres: cli.postgres).remove(s.id)
                try await queue.purge()
                if json {
                    printJSON(["sinkId": s.id, "removed": true, "droppedQueuedItems": queued, "droppedRetries": dropped])
                } else {
                    print("sink \(s.id) (\(s.name)) removed")
                }
            }
        }
    }
}
