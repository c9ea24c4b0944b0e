import ArgumentParser
import Foundation
import TributaryHTTP
import TributaryModels
import TributaryRuntime

/// `health-checker receivers …`: where alerts go.
struct ReceiversCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receivers", abstract: "Manage where alerts are sent (Slack, PagerDuty, webhooks).",
        subcommands: [Add.self, List.self, Remove.self, Test.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a receiver; the running health-checker uses it from its next round.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The receiver's name (letters, digits, ._-, up to 64).") var name: String
        @Option(help: "slack, pagerduty or webhook.") var type: String
        @Option(help: "Where to post: the Slack incoming webhook, https://events.pagerduty.com/v2/enqueue, or your endpoint.")
        var url: String
        @Option(help: "pagerduty: a file holding the integration's routing key.") var routingKeyFile: String?
        @Option(help: "The least severity sent to it: warning or critical.") var minSeverity = "warning"
        @Flag(help: "Allow private, loopback and link-local addresses (off by default).") var allowPrivateNetwork = false
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard name.range(of: "^[A-Za-z0-9_.-]{1,64}$", options: .regularExpression) != nil, Int64(name) == nil else {
                throw ValidationError("the name must be 1-64 letters, digits, '.', '_' or '-', and not a number")
            }
            guard let kind = Receiver.Kind(rawValue: type) else { throw ValidationError("--type must be slack, pagerduty or webhook") }
            guard Severity(rawValue: minSeverity) != nil else { throw ValidationError("--min-severity must be warning or critical") }
            if kind == .pagerduty && routingKeyFile == nil { throw ValidationError("a pagerduty receiver needs --routing-key-file") }
            if kind != .pagerduty && routingKeyFile != nil { throw ValidationError("--routing-key-file is for pagerduty receivers") }
        }

        func run() async throws {
            var file = routingKeyFile
            if let path = file {
                file = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
                guard let key = try? String(contentsOfFile: file!, encoding: .utf8),
                      !key.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw DaemonError("cannot read a routing key from \(path)")
                }
            }
            do {
                _ = try await OutboundGuard(threadPool: nil, cacheSeconds: 0).check(url, schemes: ["http", "https"],
                                                                                    allowPrivate: allowPrivateNetwork)
            } catch {
                throw DaemonError("\(error)")
            }
            try await HealthCheckerCLI.with(options) { cli in
                let store = ReceiverStore(postgres: cli.postgres)
                if try await store.find(name) != nil { throw DaemonError("a receiver named \(name) already exists") }
                let added = try await store.add(Receiver(id: 0, name: name, type: Receiver.Kind(rawValue: type)!, url: url,
                                                         routingKeyFile: file, allowPrivateNetwork: allowPrivateNetwork,
                                                         minSeverity: Severity(rawValue: minSeverity)!))
                if json { printJSON(added.summary) } else { print("receiver \(added.id) (\(added.name)) added") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the receivers.")
        @OptionGroup var options: CommonOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options) { cli in
                let all = try await ReceiverStore(postgres: cli.postgres).all()
                if json { printJSON(all.map(\.summary)); return }
                if all.isEmpty { print("no receivers; add one with: health-checker receivers add NAME --type … --url …") }
                for r in all {
                    print("\(r.id)\t\(r.name)\t\(r.type.rawValue)\t\(r.minSeverity.rawValue)+\t\(OutboundGuard.redacted(r.url))")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a receiver.")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The receiver's name or id.") var receiver: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options) { cli in
                let store = ReceiverStore(postgres: cli.postgres)
                guard let r = try await store.find(receiver) else { throw DaemonError("no receiver \(receiver)") }
                try await store.remove(r.id)
                if json { printJSON(["receiverId": r.id, "name": r.name, "removed": true]) } else { print("receiver \(r.name) removed") }
            }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a test notification to a receiver (PagerDuty: a trigger, then its resolve).")
        @OptionGroup var options: CommonOptions
        @Argument(help: "The receiver's name or id.") var receiver: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await HealthCheckerCLI.with(options) { cli in
                guard let r = try await ReceiverStore(postgres: cli.postgres).find(receiver) else {
                    throw DaemonError("no receiver \(receiver)")
                }
                let http = HTTPClient(threadPool: cli.pool.pool)
                defer { http.close() }
                let notifier = Notifier(http: http, outbound: OutboundGuard(threadPool: nil, cacheSeconds: 0),
                                        timeoutMs: cli.configuration.notifyTimeoutMs, maxPending: 1,
                                        runbookBase: cli.configuration.runbookBaseURL, logger: cli.logger)
                let now = Date()
                var notice = Notice(kind: .test, check: "test", checkKind: .heartbeat, severity: .warning,
                                    summary: "test notification from the Tributary health-checker", detail: [:],
                                    openedAt: now, at: now)
                var outcomes = [await notifier.send(notice, to: r)]
                if r.type == .pagerduty && outcomes[0].ok {
                    notice.kind = .resolve
                    outcomes.append(await notifier.send(notice, to: r))
                }
                let recorder = HistoryRecorder(postgres: cli.postgres, maxPending: 10, retentionDays: 30, logger: cli.logger)
                recorder.append(outcomes.map { var d = $0; d.notice.kind = .test; return .notified(d) })
                await recorder.flush()
                let failed = outcomes.first { !$0.ok }
                if json {
                    printJSON(["receiver": r.name, "ok": failed == nil, "status": outcomes.last?.status ?? 0,
                               "error": failed?.error ?? ""])
                } else if failed == nil {
                    print("test notification delivered to \(r.name) (HTTP \(outcomes.last?.status ?? 0))")
                }
                if let failed { throw DaemonError("test notification to \(r.name) failed: \(failed.error ?? "")") }
            }
        }
    }
}
