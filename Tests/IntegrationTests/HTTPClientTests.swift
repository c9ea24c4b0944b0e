import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Testing
import TributaryHTTP
import TributaryTesting

@Suite("libcurl wrapper against a local HTTP server")
struct HTTPClientTests {
    let pool = TestThreadPool(threads: 4)

    /// Runs a small Hummingbird server on a free port for the duration of `body`.
    func withServer(_ body: (Int) async throws -> Void) async throws {
        let router = Router()
        router.post("/echo") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let marker = request.headers[HTTPField.Name("X-Marker")!] ?? ""
            return Response(status: .created, headers: [HTTPField.Name("X-Echo-Marker")!: marker],
                            body: .init(byteBuffer: bytes))
        }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(3))
            return "late"
        }
        router.get("/big") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(repeating: 65, count: 100_000)))
        }
        router.get("/status/:code") { _, context -> Response in
            Response(status: .init(code: Int(context.parameters.get("code") ?? "500") ?? 500))
        }
        let port = freeLoopbackPort()
        var logger = Logger(label: "test-http")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)),
                              logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            let up = await eventually(timeout: .seconds(10)) {
                let probe = HTTPClient(threadPool: pool.pool)
                return (try? await probe.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/status/204")))?.status == 204
            }
            #expect(up)
            try await body(port)
            group.cancelAll()
        }
    }

    @Test("POST round-trips body, status and headers")
    func roundTrip() async throws {
        try await withServer { port in
            let client = HTTPClient(threadPool: pool.pool)
            let body: [UInt8] = Array(0...255)
            let response = try await client.send(HTTPClientRequest(
                method: "POST", url: "http://127.0.0.1:\(port)/echo",
                headers: [("X-Marker", "m-1"), ("Content-Type", "application/octet-stream")], body: body))
            #expect(response.status == 201)
            #expect(response.body == body)
            #expect(response.header("x-echo-marker") == "m-1")
            // The handle is reused: a second request on the same client works too.
            let again = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/status/503"))
            #expect(again.status == 503)
        }
    }

    @Test("timeouts, refused connections and oversized answers are typed errors")
    func failures() async throws {
        try await withServer { port in
            let client = HTTPClient(threadPool: pool.pool)
            let slow = await #expect(throws: HTTPClientError.self) {
                _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/slow", timeoutMs: 300))
            }
            #expect(slow?.code == .timeout)
            let big = await #expect(throws: HTTPClientError.self) {
                _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(port)/big", maximumResponseBytes: 1_000))
            }
            #expect(big?.code == .responseTooLarge)
        }
        let client = HTTPClient(threadPool: pool.pool)
        let refused = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:\(freeLoopbackPort())/"))
        }
        #expect(refused?.code == .connectFailed)
        let header = await #expect(throws: HTTPClientError.self) {
            _ = try await client.send(HTTPClientRequest(url: "http://127.0.0.1:1/", headers: [("X-Bad", "a\r\nInjected: 1")]))
        }
        #expect(header?.code == .invalidRequest)
    }
}
