import Foundation
import Testing
import TributaryHTTP
import TributaryTesting

/// `make install` and the systemd units: the units verify, and the installed binaries run
/// healthy when started the way the units start them (their command line, environment and
/// credentials directory).
@Suite("Deployment: make install and the systemd units")
struct DeploymentTests {
    let env: TestEnvironment
    let pool = TestThreadPool(threads: 4)
    let root: String
    let dir: String

    init() throws {
        env = try TestEnvironment.current()
        root = URL(fileURLWithPath: env.fixtures).deletingLastPathComponent().deletingLastPathComponent().path
        dir = env.directory + "/" + TestEnvironment.uniqueName("install")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    var prefix: String { dir + "/usr" }
    var sysconf: String { dir + "/etc" }
    var unitDir: String { prefix + "/lib/systemd/system" }

    /// Runs a command; returns its output (stdout and stderr) and exit code.
    func run(_ executable: String, _ arguments: [String]) async throws -> (String, Int32) {
        let log = dir + "/" + UUID().uuidString + ".log"
        let child = try ChildProcess(executable, arguments, captureOutput: true, stderrPath: log)
        var text = ""
        while let line = await child.readLine(timeout: .seconds(120)) { text += line + "\n" }
        await child.wait()
        return (text + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""), child.exitCode ?? -1)
    }

    func install() async throws {
        let (output, code) = try await run("/usr/bin/env", ["make", "-C", root, "--no-print-directory", "install", "PREFIX=\(prefix)",
                                                            "SYSCONFDIR=\(sysconf)", "INSTALL_BIN_DIR=\(env.binDirectory)"])
        try #require(code == 0, "make install failed: \(output)")
    }

    /// The directives of a unit file, in order (`Key=value` lines of every section).
    static func directives(_ path: String) throws -> [(key: String, value: String)] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let eq = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    @Test("make install puts binaries, units, config, SQL and secrets in place; every unit verifies; uninstall removes them")
    func installAndVerify() async throws {
        try await install()
        let fm = FileManager.default
        for daemon in ["collector", "hydration", "aggregator", "forwarder", "health-checker"] {
            #expect(fm.isExecutableFile(atPath: prefix + "/bin/tributary-\(daemon)"))
            let secret = sysconf + "/tributary/secrets/\(daemon)-db"
            #expect(((try? fm.attributesOfItem(atPath: secret))?[.posixPermissions] as? Int) == 0o600, "\(secret)")
        }
        #expect(fm.fileExists(atPath: sysconf + "/tributary/tributary.yaml"))
        #expect(fm.fileExists(atPath: prefix + "/share/tributary/roles.sql"))
        // A second install keeps the config and the secrets as they are.
        try "edited: true\n".write(toFile: sysconf + "/tributary/tributary.yaml", atomically: true, encoding: .utf8)
        let token = try String(contentsOfFile: sysconf + "/tributary/secrets/admin-token", encoding: .utf8)
        try await install()
        #expect(try String(contentsOfFile: sysconf + "/tributary/tributary.yaml", encoding: .utf8) == "edited: true\n")
        #expect(try String(contentsOfFile: sysconf + "/tributary/secrets/admin-token", encoding: .utf8) == token)

        // Templates verify as instances (named by their admin port).
        let units = try fm.contentsOfDirectory(atPath: unitDir).filter { $0.hasPrefix("tributary") }
        #expect(units.count == 9, "\(units)")
        var paths: [String] = []
        for unit in units {
            if unit.hasSuffix("@.service") {
                let instance = dir + "/" + unit.replacingOccurrences(of: "@.service", with: "@9150.service")
                try fm.copyItem(atPath: unitDir + "/" + unit, toPath: instance)
                paths.append(instance)
            } else {
                paths.append(unitDir + "/" + unit)
            }
        }
        let (output, code) = try await run("/usr/bin/env", ["systemd-analyze", "verify"] + paths)
        #expect(code == 0 && output.isEmpty, "systemd-analyze verify: \(output)")
        for unit in units where unit.hasSuffix(".service") {
            let keys = Dictionary(try Self.directives(unitDir + "/" + unit).map { ($0.key, $0.value) }) { a, _ in a }
            #expect(keys["User"] == "tributary" && keys["NoNewPrivileges"] == "yes" && keys["ProtectSystem"] == "strict"
                    && keys["PrivateTmp"] == "yes" && keys["Restart"] == "on-failure", "\(unit) lacks its hardening")
            #expect(Int(keys["TimeoutStopSec"] ?? "") ?? 0 > 25, "\(unit): TimeoutStopSec must exceed shutdown.gracePeriodSeconds (25)")
        }

        let (removed, removedCode) = try await run("/usr/bin/env", ["make", "-C", root, "--no-print-directory", "uninstall",
                                                                    "PREFIX=\(prefix)", "SYSCONFDIR=\(sysconf)"])
        #expect(removedCode == 0, "\(removed)")
        #expect(!fm.fileExists(atPath: prefix + "/bin/tributary-collector"))
        #expect(!fm.fileExists(atPath: unitDir + "/tributary.target"))
        #expect(fm.fileExists(atPath: sysconf + "/tributary/secrets/admin-token"), "uninstall keeps the secrets")
    }

    @Test("the installed binaries run healthy when started as their units start them (command, environment, credentials)")
    func startedLikeTheUnits() async throws {
        try await install()
        var admin: [String: Int] = [:]
        for d in ["collector", "hydration", "aggregator", "forwarder", "health-checker"] { admin[d] = freeLoopbackPort() }
        // The operator's edit of the installed config: where the servers are, and ports that are free here.
        let config: [String: Any] = [
            // Databases 0-15 of the test Redis belong to other suites (their workers would take each
            // other's items); the test servers have 32 (deploy/dev/stack.sh).
            "redis": ["url": "redis://127.0.0.1:\(env.redisPort)/16"],
            "postgres": ["host": "127.0.0.1", "port": env.pgPort, "database": "tributary"],
            "heartbeat": ["intervalSeconds": 0.5],
            "shutdown": ["gracePeriodSeconds": 5],
            "collector": ["listen": ["port": freeLoopbackPort()], "admin": ["port": admin["collector"]!]],
            "hydration": ["admin": ["port": admin["hydration"]!], "geoip": ["database": env.geoDatabase]],
            "aggregator": ["admin": ["port": admin["aggregator"]!], "stats": ["port": freeLoopbackPort()]],
            "forwarder": ["admin": ["port": admin["forwarder"]!]],
            "healthChecker": ["admin": ["port": admin["health-checker"]!], "status": ["port": freeLoopbackPort()]],
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: sysconf + "/tributary/tributary.yaml"))
        let extraPort = freeLoopbackPort()
        let units = admin.keys.sorted().map { ("tributary-\($0).service", "", admin[$0]!) }
            + [("tributary-hydration@.service", String(extraPort), extraPort)]
        var children: [(String, ChildProcess, Int)] = []
        defer { for (_, child, _) in children { child.send(SIGKILL) } }
        for (unit, instance, port) in units {
            let name = unit.replacingOccurrences(of: "@.service", with: "@\(instance).service")
            let credentials = dir + "/credentials/" + name
            try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
            var environment = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
                               "CREDENTIALS_DIRECTORY": credentials]
            var command: [String] = []
            func expand(_ s: String) -> String {
                s.replacingOccurrences(of: "%d", with: credentials).replacingOccurrences(of: "%S", with: dir + "/state")
                    .replacingOccurrences(of: "%i", with: instance)
            }
            for (key, value) in try Self.directives(unitDir + "/" + unit) {
                switch key {
                case "ExecStart": command = expand(value).split(separator: " ").map(String.init)
                case "Environment":
                    let pair = expand(value)
                    if let eq = pair.firstIndex(of: "=") { environment[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
                case "LoadCredential":
                    let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
                    try FileManager.default.copyItem(atPath: parts[1], toPath: credentials + "/" + parts[0])
                case "StateDirectory":
                    try FileManager.default.createDirectory(atPath: dir + "/state/" + value, withIntermediateDirectories: true)
                default: break
                }
            }
            try #require(command.first?.hasPrefix(prefix + "/bin/") == true, "\(unit): ExecStart \(command)")
            let child = try ChildProcess(command[0], Array(command.dropFirst()), environment: environment,
                                         stderrPath: dir + "/\(name).log")
            children.append((name, child, port))
        }
        let http = HTTPClient(threadPool: pool.pool)
        for (name, _, port) in children {
            let ready = await eventually(timeout: .seconds(60)) {
                (try? await http.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/readyz", timeoutMs: 1000)))?.status == 200
            }
            let log = (try? String(contentsOfFile: dir + "/\(name).log", encoding: .utf8)) ?? ""
            #expect(ready, "\(name) is not ready on port \(port): \(log.suffix(2000))")
        }
        for (name, child, _) in children {
            child.send(SIGTERM)
            let stopped = await eventually(timeout: .seconds(20)) { !child.isRunning }
            #expect(stopped && child.exitCode == 0, "\(name) did not stop cleanly on SIGTERM")
        }
    }
}
