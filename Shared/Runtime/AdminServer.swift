import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// The admin endpoint every daemon serves on its own port:
/// - `GET /healthz`: 200 while the process runs its services.
/// - `GET /readyz`: 200 when every ``ReadinessCheck`` passes, else 503 with which failed.
/// - `GET /metrics`: Prometheus text format.
public struct AdminServer: Service {
    let application: Application<RouterResponder<BasicRequestContext>>

    public init(host: String, port: Int, service: String, checks: [ReadinessCheck], logger: Logger,
                onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            Self.json(.ok, ["status": "ok", "service": service])
        }
        router.get("/readyz") { _, _ -> Response in
            var failed: [String] = []
            for check in checks {
                do { try await check.check() } catch { failed.append(check.name) }
            }
            if failed.isEmpty { return Self.json(.ok, ["status": "ready", "service": service]) }
            return Self.json(.serviceUnavailable,
                             ["status": "not ready", "service": service, "failing": failed.joined(separator: ",")])
        }
        router.get("/metrics") { _, _ -> Response in
            let text = MetricsBootstrap.registry.emitToBuffer()
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        var adminLogger = logger
        adminLogger.logLevel = max(logger.logLevel, .notice)
        application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: adminLogger)
    }

    public func run() async throws {
        try await application.run()
    }

    /// A small JSON object answer.
    public static func json(_ status: HTTPResponse.Status, _ fields: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension AdminServer: CustomStringConvertible {
    public var description: String { "AdminServer" }
}
