import Foundation
import Testing
import TributaryPostgres
import TributaryRuntime
@testable import Collector
@testable import Hydration
@testable import Aggregator
@testable import Forwarder
@testable import HealthChecker

@Suite("The example config stays loadable")
struct ExampleConfigTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/config/tributary.example.yaml").path

    @Test("deploy/config/tributary.example.yaml loads for every daemon, with the documented values")
    func example() async throws {
        let reader = try await ConfigLoader.load(path: Self.path, environment: [:])
        for daemon in DaemonName.allCases {
            let configuration = try RuntimeConfiguration(daemon: daemon, reader: reader)
            #expect(configuration.postgres.user == daemon.defaultRole)
            #expect(configuration.adminPort == daemon.defaultAdminPort)
            #expect(configuration.postgresPoolSize == daemon.defaultPoolSize)
        }
        let collector = try CollectorConfiguration(reader: reader)
        #expect(collector.port == 8080)
        #expect(collector.limits.maximumEventBytes == 32_768)
        #expect(collector.spoolMaxBytes == 1_073_741_824)
        let hydration = try HydrationConfiguration(reader: reader)
        #expect(hydration.dedupWindowDays == 7)
        #expect(hydration.concurrency == 4)
        #expect(hydration.sitesPerTurn == 8)
        #expect(hydration.traitsHistoryDays == 90)
        #expect(hydration.visitorContinuitySeconds == 1800)
        let aggregator = try AggregatorConfiguration(reader: reader)
        #expect(aggregator.statsPort == 8090)
        #expect(aggregator.breakdownLimit == 1000)
        #expect(aggregator.spanBuildLimit == 1000)
        #expect(aggregator.maxItemsPerTurn == 100)
        #expect(aggregator.adminToken == nil)
        #expect(hydration.sinksRefreshSeconds == 2)
        let health = try HealthCheckerConfiguration(reader: reader)
        #expect(health.statusPort == 8095)
        #expect(health.escalateAfter == 3)
        #expect(health.instances["health-checker"] == 1)
        #expect(health.jobs.first { $0.service == "hydration" }?.everySeconds == 3600)
        #expect(health.tieRescanSeconds == 3600)
        #expect(health.canaryWriteKeyFiles.isEmpty)
        #expect(health.diskPaths == ["/", "/var/lib/tributary/collector-spool"])
        let forwarder = try ForwarderConfiguration(reader: reader)
        #expect(forwarder.retry.maxAgeSeconds == 72 * 3600)
        #expect(forwarder.retry.maxAttempts == 20)
        #expect(forwarder.breakerFailures == 5)
    }

    @Test("a malformed config file is refused with its path in the message")
    func malformed() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).json")
        try Data("{ not json".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        await #expect {
            _ = try await ConfigLoader.load(path: file.path, environment: [:])
        } throws: { "\($0)".contains(file.path) }
    }
}
