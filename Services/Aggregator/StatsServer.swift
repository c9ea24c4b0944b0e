import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import TributaryModels
import TributaryRuntime

/// The aggregator's read-only HTTP server (127.0.0.1:8090 by default): the Stats API in
/// Plausible's shape and the dashboard page. API: docs/stats-openapi.yaml.
///
/// - `POST /api/v2/query`: a query body; the results.
/// - `GET /api/v1/stats/realtime/visitors?site_id=…`: a bare number.
/// - `GET /`: the dashboard (no external scripts or fonts).
struct StatsServer: Service, CustomStringConvertible {
    /// Every route (method, path): what the router registers and docs/stats-openapi.yaml documents.
    static let routes: [(method: String, path: String)] = [
        ("POST", "/api/v2/query"), ("GET", "/api/v1/stats/realtime/visitors"), ("GET", "/"),
    ]

    let application: Application<RouterResponder<BasicRequestContext>>

    var description: String { "StatsServer" }

    init(host: String, port: Int, engine: StatsEngine, logger: Logger,
         onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        let router = Router()
        let maxBody = engine.configuration.maxBodyBytes
        let adminToken = engine.configuration.adminToken
        router.post("/api/v2/query") { request, _ -> Response in
            do {
                let caller = Self.caller(request, adminToken: adminToken)
                let buffer: ByteBuffer
                do { buffer = try await request.body.collect(upTo: maxBody) } catch {
                    throw StatsEngine.Failure(status: 413, message: "the body exceeds \(maxBody) bytes (aggregator.stats.maxBodyBytes)")
                }
                let body: JSONValue
                do { body = try JSONValue.parse(buffer.readableBytesView) } catch {
                    throw StatsEngine.Failure(status: 400, message: "the body is not JSON: \(error)")
                }
                return Self.json(.ok, try await engine.query(body, caller: caller))
            } catch {
                return Self.failure(error, logger: logger)
            }
        }
        router.get("/api/v1/stats/realtime/visitors") { request, _ -> Response in
            do {
                guard let site = request.uri.queryParameters.get("site_id"), !site.isEmpty else {
                    throw StatsEngine.Failure(status: 400, message: "site_id is required")
                }
                let n = try await engine.realtimeVisitors(site: site, caller: Self.caller(request, adminToken: adminToken))
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: String(n))))
            } catch {
                return Self.failure(error, logger: logger)
            }
        }
        router.get("/") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8",
                                            .contentSecurityPolicy: "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'"],
                     body: .init(byteBuffer: ByteBuffer(string: Dashboard.html)))
        }
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "tributary"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: serverLogger)
    }

    func run() async throws {
        try await application.run()
    }

    static func caller(_ request: Request, adminToken: String?) -> StatsEngine.Caller {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return .anonymous }
        let token = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else { return .anonymous }
        if let adminToken, constantTimeEquals(token, adminToken) { return .admin }
        return .key(token)
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
    }

    static func failure(_ error: any Error, logger: Logger) -> Response {
        if let failure = error as? StatsEngine.Failure {
            return json(HTTPResponse.Status(code: failure.status), .object(["error": .string(failure.message)]))
        }
        logger.error("stats query failed", metadata: ["error": "\(error)"])
        return json(.internalServerError, .object(["error": .string("the query failed; see the aggregator's log")]))
    }
}
