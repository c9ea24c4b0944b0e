import Foundation
import Testing
import TributaryModels
import TributaryTesting
@testable import Aggregator

@Suite("Aggregator: docs/stats-openapi.yaml stays true")
struct AggregatorOpenAPITests {
    let f: AggregatorFixture
    let document: String
    let description: [String: Any]

    init() async throws {
        f = try await AggregatorFixture()
        let root = URL(fileURLWithPath: f.env.fixtures).deletingLastPathComponent().deletingLastPathComponent().path
        document = root + "/docs/stats-openapi.yaml"
        let child = try ChildProcess(f.env.python, [f.env.fixtures + "/openapi/describe.py", document],
                                     captureOutput: true, stderrPath: f.env.directory + "/stats-openapi-check.log")
        var text = ""
        while let line = await child.readLine(timeout: .seconds(30)) { text += line }
        await child.wait()
        guard child.exitCode == 0 else {
            throw TestEnvironmentError(description: "docs/stats-openapi.yaml is not valid OpenAPI; see \(f.env.directory)/stats-openapi-check.log")
        }
        description = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    var operations: [[String: Any]] { description["operations"] as? [[String: Any]] ?? [] }

    /// Whether `body` matches the documented schema of (method, path, status).
    func matches(_ method: String, _ path: String, _ status: Int, _ body: String) async throws -> Bool {
        let file = f.env.directory + "/stats-answer-\(UUID().uuidString).json"
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        let log = f.env.directory + "/stats-answer-check.log"
        let code = try await runProcess(f.env.python, [f.env.fixtures + "/openapi/describe.py", document, "--check", method,
                                                       path, String(status), file], stderrPath: log)
        return code == 0
    }

    @Test("the document lists exactly the routes the server registers")
    func routesMatch() {
        let documented = Set(operations.map { "\($0["method"] as? String ?? "") \($0["path"] as? String ?? "")" })
        #expect(documented == Set(StatsServer.routes.map { "\($0.method) \($0.path)" }))
    }

    @Test("live answers match the documented schemas")
    func liveAnswers() async throws {
        let site = try await f.addSite()
        for item in StatsEvents.items(site: site) { try await f.handler.handle([item]) }
        var engine = StatsEngine(postgres: f.db, catalog: f.catalog, realtime: f.handler.realtime, configuration: f.configuration)
        engine.now = { ISO8601.parse("2030-01-11T12:00:00Z")! }
        let server = try await StatsServerHandle(engine: engine, pool: f.pool)
        defer { server.stop() }
        let query = try #require(operations.first { $0["path"] as? String == "/api/v2/query" })
        var example = try #require(query["example"] as? [String: Any])
        example["site_id"] = String(site)
        let body = String(decoding: try JSONSerialization.data(withJSONObject: example), as: UTF8.self)
        let ok = try await server.post(body)
        #expect(ok.0 == 200)
        #expect(try await matches("POST", "/api/v2/query", 200, ok.1?.jsonText ?? ""))
        let refused = try await server.post(#"{"site_id":"\#(site)","metrics":["nope"],"date_range":"7d"}"#)
        #expect(refused.0 == 400)
        #expect(try await matches("POST", "/api/v2/query", 400, refused.1?.jsonText ?? ""))
        let live = try await server.get("/api/v1/stats/realtime/visitors?site_id=\(site)")
        #expect(live.0 == 200)
        #expect(try await matches("GET", "/api/v1/stats/realtime/visitors", 200, live.1))
        let denied = try await server.get("/api/v1/stats/realtime/visitors?site_id=\(site)", token: nil)
        #expect(denied.0 == 401)
        #expect(try await matches("GET", "/api/v1/stats/realtime/visitors", 401, denied.1))
        for operation in operations {
            let statuses = operation["statuses"] as? [Int] ?? []
            #expect(statuses.contains(200), "\(operation["path"] ?? "")")
        }
        #expect(!(try await matches("POST", "/api/v2/query", 200, #"{"results":[{"metrics":"x"}]}"#)),
                "the check itself rejects a wrong shape")
    }
}
