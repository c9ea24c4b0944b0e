import Foundation
import Testing
@testable import TributaryRedis
import TributaryRuntime
import TributaryTesting

/// A 3-master Redis Cluster on loopback (Debian's redis-server, `redis-cli --cluster create`),
/// started for one test and stopped after it.
struct RedisClusterFixture {
    let ports: [Int]
    let directory: String
    let processes: [ChildProcess]

    /// The configuration a daemon would have: the seed nodes.
    var configuration: RedisConfiguration {
        var c = RedisConfiguration()
        c.clusterNodes = ports.map { "127.0.0.1:\($0)" }
        return c
    }

    static func start(_ env: TestEnvironment) async throws -> RedisClusterFixture {
        let directory = env.directory + "/" + TestEnvironment.uniqueName("cluster")
        // A node's cluster bus listens on its port + 10000, so ports stay at or below 55535.
        var ports: [Int] = []
        while ports.count < 3 {
            let port = freeLoopbackPort()
            if port <= 55_535 && !ports.contains(port) { ports.append(port) }
        }
        var processes: [ChildProcess] = []
        for port in ports {
            let dir = directory + "/\(port)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            processes.append(try ChildProcess("/usr/bin/env", [
                "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--cluster-enabled", "yes",
                "--cluster-config-file", dir + "/nodes.conf", "--cluster-node-timeout", "5000", "--save", "",
                "--appendonly", "no", "--logfile", dir + "/redis.log"], stderrPath: dir + "/stderr.log"))
        }
        let fixture = RedisClusterFixture(ports: ports, directory: directory, processes: processes)
        for port in ports {
            let up = await eventually(timeout: .seconds(20)) {
                (try? await runProcess("/usr/bin/env", ["redis-cli", "-p", String(port), "ping"])) == 0
            }
            guard up else { fixture.stop(); throw TestEnvironmentError(description: "redis-server on \(port) did not start") }
        }
        let created = try await runProcess("/usr/bin/env", ["redis-cli", "--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
                                           + ["--cluster-replicas", "0", "--cluster-yes"], stderrPath: directory + "/create.log")
        guard created == 0 else { fixture.stop(); throw TestEnvironmentError(description: "redis-cli --cluster create failed") }
        // Every node must see the cluster ok (each learns the others' slots by gossip, in its
        // own time): a command sent to one that does not yet answers CLUSTERDOWN.
        let ok = await eventually(timeout: .seconds(30)) {
            for port in ports {
                let log = directory + "/info-\(UUID().uuidString)"
                let child = try? ChildProcess("/usr/bin/env", ["redis-cli", "-p", String(port), "cluster", "info"], captureOutput: true,
                                              stderrPath: log)
                var text = ""
                while let line = await child?.readLine(timeout: .seconds(5)) { text += line + "\n" }
                await child?.wait()
                guard text.contains("cluster_state:ok") else { return false }
            }
            return true
        }
        guard ok else { fixture.stop(); throw TestEnvironmentError(description: "the cluster did not become ok") }
        return fixture
    }

    func stop() {
        for process in processes { process.send(SIGKILL) }
    }
}

@Suite("Reliable queue on a 3-master Redis Cluster", .serialized)
struct ReliableQueueClusterTests {
    @Test("the queue tests pass unchanged on a Redis Cluster given by its seed nodes; queues spread over the masters")
    func queueTestsOnCluster() async throws {
        let env = try TestEnvironment.current()
        let cluster = try await RedisClusterFixture.start(env)
        defer { cluster.stop() }
        let tests = try ReliableQueueTests(configuration: cluster.configuration)
        try await tests.fifoAndAck()
        try await tests.pushToSeveralQueues()
        try await tests.binaryPayloads()
        try await tests.fairness()
        try await tests.gracefulShutdown()

        // The router's slot function agrees with the server's, and a queue's keys share one slot.
        let keys = QueueKeys(name: "hydrate")
        for key in [keys.ring, keys.sites, keys.site("42"), keys.inflight("c1"), "tributary:maintenance", "plain"] {
            let slot = try await tests.redis.send("CLUSTER", "KEYSLOT", key).integer
            #expect(slot.map(Int.init) == RedisClusterRouter.slot(ofKey: Array(key.utf8)), "\(key)")
        }
        // Queues land on more than one master (each is one slot; many queues spread).
        var owners: Set<Int> = []
        let slots = try await tests.redis.send("CLUSTER", "SLOTS").array ?? []
        for name in (0..<12).map({ "forward:\($0)" }) {
            let slot = RedisClusterRouter.slot(ofKey: Array(QueueKeys(name: name).ring.utf8))
            for range in slots {
                guard let parts = range.array, let first = parts[0].integer, let last = parts[1].integer,
                      (Int(first)...Int(last)).contains(slot), let master = parts[2].array, let port = master[1].integer else { continue }
                owners.insert(Int(port))
            }
        }
        #expect(owners.count > 1, "12 queues all on one master: \(owners)")

        // The config takes the seed nodes.
        let reader = try await ConfigLoader.load(path: nil, environment: [
            "TRIBUTARY_REDIS_CLUSTER_NODES": cluster.configuration.clusterNodes.joined(separator: ","),
        ])
        #expect(try RuntimeConfiguration(daemon: .hydration, reader: reader).redis.clusterNodes == cluster.configuration.clusterNodes)
    }
}
