import Foundation
import Logging
import ServiceLifecycle
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Keeps one ``SinkRunner`` per enabled sink: reads the sinks every
/// `forwarder.sinks.refreshSeconds`, starts runners for new or re-enabled sinks and stops
/// those of disabled or removed ones (they finish what they hold first). Changes to a
/// sink's URL, secret, rules or limits are picked up by its runner without a restart, but
/// for its concurrency: the runner's own threads are sized by it, so a new runner replaces
/// the old one (which finishes what it holds).
struct SinkSupervisor: Service, CustomStringConvertible {
    let catalog: SinkCatalog
    let configuration: ForwarderConfiguration
    /// Makes the runner of a sink (its id and concurrency), stopped by the flag.
    let makeRunner: @Sendable (Int64, Int, StopFlag) -> SinkRunner
    let logger: Logger

    var description: String { "SinkSupervisor" }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            var running: [Int64: (flag: StopFlag, concurrency: Int)] = [:]
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do { try await catalog.refresh() } catch {
                    logger.warning("could not read the sinks; keeping the last ones", metadata: ["error": "\(error)"])
                }
                var wanted: [Int64: Int] = [:]
                for sink in catalog.enabled { wanted[sink.id] = max(sink.limits.concurrency, 1) }
                for (id, runner) in running where wanted[id] != runner.concurrency {
                    logger.notice(wanted[id] == nil ? "sink disabled or removed; stopping its delivery"
                                                    : "sink concurrency changed; replacing its runner",
                                  metadata: ["sink.id": "\(id)"])
                    runner.flag.set()
                    running[id] = nil
                }
                for (id, concurrency) in wanted.sorted(by: { $0.key < $1.key }) where running[id] == nil {
                    let flag = StopFlag()
                    running[id] = (flag, concurrency)
                    let runner = makeRunner(id, concurrency, flag)
                    logger.info("delivering to sink", metadata: ["sink.id": "\(id)", "sink.concurrency": "\(concurrency)"])
                    group.addTask { await runner.run() }
                }
                try? await gracefulSleep(for: .milliseconds(Int(configuration.sinksRefreshSeconds * 1000)))
            }
            for runner in running.values { runner.flag.set() }
        }
    }
}
