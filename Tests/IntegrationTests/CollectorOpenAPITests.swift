import Foundation
import Testing
import TributaryHTTP
import TributaryTesting
@testable import Collector

@Suite("Collector: docs/openapi.yaml stays true")
struct CollectorOpenAPITests {
    let env: TestEnvironment
    let description: [String: Any]
    let root: String

    init() async throws {
        env = try TestEnvironment.current()
        root = URL(fileURLWithPath: env.fixtures).deletingLastPathComponent().deletingLastPathComponent().path
        let child = try ChildProcess(env.python, [env.fixtures + "/openapi/describe.py", root + "/docs/openapi.yaml"],
                                     captureOutput: true, stderrPath: env.directory + "/openapi-check.log")
        var text = ""
        while let line = await child.readLine(timeout: .seconds(30)) { text += line }
        await child.wait()
        guard child.exitCode == 0 else {
            throw TestEnvironmentError(description: "docs/openapi.yaml is not valid OpenAPI; see \(env.directory)/openapi-check.log")
        }
        description = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    var operations: [[String: Any]] { description["operations"] as? [[String: Any]] ?? [] }

    @Test("the document lists exactly the routes the server registers")
    func routesMatch() {
        let documented = Set(operations.map { "\($0["method"] as? String ?? "") \($0["path"] as? String ?? "")" })
        let served = Set(CollectorRoutes.all.map { "\($0.method) \($0.path)" })
        #expect(documented == served)
    }

    @Test("every error code the collector can answer with is documented")
    func errorCodesMatch() throws {
        let documented = Set(description["errorCodes"] as? [String] ?? [])
        var used: Set<String> = []
        let folder = root + "/Services/Collector"
        for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file.hasSuffix(".swift") {
            let source = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
            for pattern in [#"code: "([a-z_]+)""#, #"badRequest\("([a-z_]+)""#] {
                let regex = try Regex(pattern)
                for match in source.matches(of: regex) {
                    if let code = match.output[1].substring { used.insert(String(code)) }
                }
            }
        }
        #expect(!used.isEmpty)
        #expect(used.subtracting(documented).isEmpty, "undocumented: \(used.subtracting(documented))")
    }

    @Test("each documented operation answers as documented on a running collector")
    func liveAnswers() async throws {
        let collector = CollectorProcess(env: env, redisDatabase: 10)
        try await collector.start()
        defer { Task { await collector.stop() } }
        let site = try await collector.addSite()
        for operation in operations {
            let method = operation["method"] as? String ?? ""
            let path = operation["path"] as? String ?? ""
            let statuses = operation["statuses"] as? [Int] ?? []
            var response: HTTPClientResponse
            switch method {
            case "POST":
                let example = try JSONSerialization.data(withJSONObject: try #require(operation["example"]))
                response = try await collector.send(path, key: site.key, body: Array(example))
                #expect(response.status == 200, "\(path): \(String(decoding: response.body, as: UTF8.self))")
                #expect(response.json["success"] as? Bool == true && response.batchID != nil)
                let refused = try await collector.send(path, key: site.key, json: "{")
                #expect(statuses.contains(refused.status))
                #expect((description["errorCodes"] as? [String] ?? []).contains(refused.errorCode ?? ""))
            case "GET" where path.hasPrefix("/v1/pixel/"):
                let data = Data(#"{"writeKey":"\#(site.key)","event":"Opened","name":"Home","anonymousId":"a"}"#.utf8)
                response = try await collector.send(path + "?data=" + data.base64EncodedString()
                    .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: "GET", headers: [])
            case "OPTIONS":
                response = try await collector.send(path, method: "OPTIONS", headers: [("Origin", "https://any.example")])
            default:
                response = try await collector.send(path, method: method, headers: [])
            }
            #expect(statuses.contains(response.status), "\(method) \(path) answered \(response.status), documented \(statuses)")
        }
    }
}
