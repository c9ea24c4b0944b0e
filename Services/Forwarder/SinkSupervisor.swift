import Foundation
import Logging
import ServiceLifecycle
import TributaryModels
import TributaryRedis
import TributaryRuntime

/// Keeps one ``SinkRunner`` per enabled sink: reads the sinks every
/// `forwarder.sinks.refreshSeconds`, starts runners for new or re-enabled sinks and stops
/// those of disabled or removed ones (they finish what they hold first). Changes to a
/// sink's URL, secret, rules or limits are picked up by its runner without a restart.
struct SinkSupervisor: Service, CustomStringConvertible {
    let catalog: SinkCatalog
    let configuration: ForwarderConfiguration
    let makeRunner: @Sendable (Int64, StopFlag) -> SinkRunner
    let logger: Logger

    var description: String { "SinkSupervisor" }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            var running: [Int64: StopFlag] = [:]
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                do { try await catalog.refresh() } catch {
                    logger.warning("could not read the sinks; keeping the last ones", metadata: ["error": "\(error)"])
                }
                let wanted = Set(catalog.enabled.map(\.id))
                for (id, flag) in running where !wanted.contains(id) {
                    logger.notice("sink disabled or removed; stopping its delivery", metadata: ["sink.id": "\(id)"])
                    flag.set()
                    running[id] = nil
                }
                for id in wanted.sorted() where running[id] == nil {
                    let flag = StopFlag()
                    running[id] = flag
                    let runner = makeRunner(id, flag)
                    logger.info("delivering to sink", metadata: ["sink.id": "\(id)"])
                    group.addTask { await runner.run() }
                }
                try? await gracefulSleep(for: .milliseconds(Int(configuration.sinksRefreshSeconds * 1000)))
            }
            for flag in running.values { flag.set() }
        }
    }
}
