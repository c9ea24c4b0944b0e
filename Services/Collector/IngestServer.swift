import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import TributaryRuntime

/// The collector's public HTTP server (127.0.0.1:8080 by default): the Segment tracking
/// API, pixels, CORS preflights, the browser tracker and its settings, and the probes. Routes: ``CollectorRoutes``; API:
/// docs/openapi.yaml.
struct IngestServer: Service, CustomStringConvertible {
    let application: Application<RouterResponder<IngestContext>>

    var description: String { "IngestServer" }

    init(handler: IngestHandler, host: String, port: Int, logger: Logger,
         onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        let router = Router(context: IngestContext.self)
        for endpoint in IngestEndpoint.allCases {
            router.post("/v1/\(endpoint.rawValue)") { request, context in
                await handler.post(request, context: context, endpoint: endpoint)
            }
            router.on("/v1/\(endpoint.rawValue)", method: .options) { request, _ in handler.preflight(request) }
        }
        for endpoint in [IngestEndpoint.track, .page] {
            router.get("/v1/pixel/\(endpoint.rawValue)") { request, context in
                await handler.pixel(request, context: context, endpoint: endpoint)
            }
            router.on("/v1/pixel/\(endpoint.rawValue)", method: .options) { request, _ in handler.preflight(request) }
        }
        let tracker = TrackerHandler(script: TrackerScript(), configuration: handler.configuration.tracker, ingest: handler)
        router.get("/tributary.js") { request, _ in tracker.serveScript(request) }
        router.get("/v1/settings") { request, _ in tracker.settings(request) }
        router.get("/healthz") { _, _ in
            AdminServer.json(.ok, ["status": "ok", "service": "collector"])
        }
        router.get("/readyz") { _, _ in
            handler.sites.isLoaded && (handler.monitor.isRedisReachable || handler.writer.isPostgresAvailable)
                ? AdminServer.json(.ok, ["status": "ready", "service": "collector"])
                : AdminServer.json(.serviceUnavailable, ["status": "not ready", "service": "collector"])
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: MetricsBootstrap.registry.emitToBuffer())))
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
}
