import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import TributaryModels
import TributaryRuntime

/// The health-checker's status endpoint, for outside monitors and people:
/// - `GET /status`: JSON, overall and per check; 200 when healthy (or in maintenance), 503 otherwise;
/// - `GET /`: the same as an HTML page;
/// - `GET /metrics`: Prometheus text format;
/// - `GET /trace/<id>[?site=S]`: one event's journey (as `health-checker trace --json`), for
///   the admin token (`Authorization: Bearer …`, `healthChecker.adminTokenFile`).
struct StatusServer: Service, CustomStringConvertible {
    let application: Application<RouterResponder<BasicRequestContext>>

    var description: String { "StatusServer" }

    init(host: String, port: Int, board: StatusBoard, runbookBase: String, tracer: EventTracer? = nil, adminToken: String? = nil,
         logger: Logger, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) {
        let router = Router()
        router.get("/trace/:id") { request, context -> Response in
            func answer(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
                Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                         body: .init(byteBuffer: ByteBuffer(bytes: value.serialized())))
            }
            func failed(_ status: HTTPResponse.Status, _ message: String) -> Response {
                answer(status, .object(["error": .string(message)]))
            }
            guard let tracer, let adminToken else {
                return failed(.notFound, "tracing over HTTP is off: set healthChecker.adminTokenFile")
            }
            guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer "),
                  constantTimeEquals(String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces), adminToken) else {
                return failed(.unauthorized, "send the admin token as Authorization: Bearer <token>")
            }
            let id = context.parameters.get("id") ?? ""
            var site: Int64?
            if let text = request.uri.queryParameters.get("site") {
                guard let n = Int64(text), n > 0 else { return failed(.badRequest, "site must be a site id, got \(text)") }
                site = n
            }
            do {
                return answer(.ok, try await tracer.trace(id.removingPercentEncoding ?? id, site: site).json)
            } catch let failure as EventTracer.Failure {
                return failed(HTTPResponse.Status(code: failure.status), failure.description)
            } catch {
                logger.error("trace failed", metadata: ["error": "\(error)"])
                return failed(.serviceUnavailable, "the trace failed (PostgreSQL or Redis unreachable?); see the health-checker's log")
            }
        }
        router.get("/status") { _, _ -> Response in
            let (status, body) = StatusPage.json(board.snapshot, runbookBase: runbookBase)
            return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.get("/") { _, _ -> Response in
            let (status, _) = StatusPage.json(board.snapshot, runbookBase: runbookBase)
            return Response(status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: StatusPage.html(board.snapshot, runbookBase: runbookBase))))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: MetricsBootstrap.registry.emitToBuffer())))
        }
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        application = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
                                  onServerRunning: { await onServerRunning($0.localAddress?.port ?? port) }, logger: quiet)
    }

    func run() async throws {
        try await application.run()
    }
}

/// Renders the status as JSON and HTML.
enum StatusPage {
    static func overall(_ snapshot: StatusBoard.Snapshot) -> String {
        guard let round = snapshot.round else { return "starting" }
        if round.maintenance != nil { return "maintenance" }
        if round.results.contains(where: { $0.status == .failing }) { return "failing" }
        if round.results.contains(where: { $0.status == .unknown }) { return "unknown" }
        return "ok"
    }

    static func json(_ snapshot: StatusBoard.Snapshot, runbookBase: String) -> (HTTPResponse.Status, [UInt8]) {
        let state = overall(snapshot)
        var body: [String: JSONValue] = ["status": .string(state)]
        if let round = snapshot.round {
            body["checkedAt"] = .string(ISO8601.format(round.at))
            body["checks"] = .array(round.results.map { r in
                var o: [String: JSONValue] = ["name": .string(r.name), "kind": .string(r.kind.rawValue),
                                              "status": .string(r.status.rawValue), "summary": .string(r.summary),
                                              "detail": .object(r.detail),
                                              "runbook": .string(NoticePayload.runbook(r.kind, base: runbookBase))]
                if let cause = r.cause, r.status != .ok { o["groupedUnder"] = .string(cause) }
                if let incident = snapshot.incidents[r.name] {
                    o["incident"] = .object(["severity": .string(incident.severity.rawValue),
                                             "openedAt": .string(ISO8601.format(incident.openedAt))])
                }
                return .object(o)
            })
            if let m = round.maintenance {
                body["maintenance"] = .object(["reason": .string(m.reason), "since": .string(ISO8601.format(m.since)),
                                               "by": .string(m.by)])
            }
        }
        let code: HTTPResponse.Status = (state == "ok" || state == "maintenance") ? .ok : .serviceUnavailable
        return (code, JSONValue.object(body).serialized())
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func html(_ snapshot: StatusBoard.Snapshot, runbookBase: String) -> String {
        let state = overall(snapshot)
        var rows = ""
        let results = (snapshot.round?.results ?? []).sorted {
            ($0.status == .ok ? 1 : 0, $0.name) < ($1.status == .ok ? 1 : 0, $1.name)
        }
        for r in results {
            let incident = snapshot.incidents[r.name].map { " (\($0.severity.rawValue) since \(ISO8601.format($0.openedAt)))" } ?? ""
            let grouped = r.status != .ok ? r.cause.map { " — grouped under \(escape($0))" } ?? "" : ""
            rows += "<tr class=\"\(r.status.rawValue)\"><td>\(r.status.rawValue)</td><td>\(escape(r.name))</td>"
                + "<td>\(escape(r.summary))\(escape(incident))\(grouped)</td>"
                + "<td><a href=\"\(escape(NoticePayload.runbook(r.kind, base: runbookBase)))\">runbook</a></td></tr>\n"
        }
        var banner = ""
        if let m = snapshot.round?.maintenance {
            banner = "<p class=\"maintenance\">Maintenance mode since \(ISO8601.format(m.since)) by \(escape(m.by)): "
                + "\(escape(m.reason)). Alerts are silenced.</p>"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="15">
            <title>Tributary status: \(state)</title>
            <style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td{padding:.3em .8em;border-bottom:1px solid #ddd}
            tr.failing td:first-child{color:#b00;font-weight:bold}tr.unknown td:first-child{color:#a60}tr.ok td:first-child{color:#070}
            .maintenance{background:#ffd;padding:.5em}</style></head>
            <body><h1>Tributary: \(state)</h1>
            \(banner)
            <p>Checked \(snapshot.round.map { ISO8601.format($0.at) } ?? "not yet").</p>
            <table><tr><th>status</th><th>check</th><th>summary</th><th></th></tr>
            \(rows)</table></body></html>
            """
    }
}
