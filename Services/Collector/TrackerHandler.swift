import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /tributary.js` (the browser tracker) and `GET /v1/settings` (what the tracker
/// needs to know of its site), on the ingest server. docs/tracker.md describes both.
struct TrackerHandler: Sendable {
    let script: TrackerScript
    let configuration: TrackerConfiguration
    let ingest: IngestHandler

    /// The script: gzipped when the client accepts it, 304 when its ETag still matches.
    func serveScript(_ request: Request) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/javascript; charset=utf-8"
        headers[.cacheControl] = "public, max-age=\(configuration.scriptCacheSeconds)"
        headers[.eTag] = script.etag
        headers[.vary] = "Accept-Encoding"
        // Pages that isolate themselves (Cross-Origin-Embedder-Policy) may still load it.
        headers[HTTPField.Name("Cross-Origin-Resource-Policy")!] = "cross-origin"
        if let match = request.headers[.ifNoneMatch],
           match.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == script.etag || $0 == "*" }) {
            return Response(status: .notModified, headers: headers)
        }
        let gzip = request.headers[.acceptEncoding].map(Self.acceptsGzip) ?? false
        if gzip && !script.gzipped.isEmpty {
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: script.gzipped)))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: script.plain)))
    }

    /// `{"batchSize":…,"flushIntervalMs":…,"maxStoredEvents":…,"retryMaxMs":…,"cookies":…,"honorDnt":…}`
    /// for `?writeKey=`, under the same checks as sending (key, site enabled, origin).
    func settings(_ request: Request) -> Response {
        var cors = ingest.corsHeaders(request)
        do throws(IngestError) {
            let key = request.uri.queryParameters.get("writeKey").map { String($0) }
            let site = try ingest.authorisedSite(key: key, request: request)
            cors[.contentType] = "application/json"
            cors[.cacheControl] = "private, max-age=\(configuration.settingsCacheSeconds)"
            let body: [String: Any] = [
                "batchSize": configuration.batchSize, "flushIntervalMs": configuration.flushIntervalMs,
                "maxStoredEvents": configuration.maxStoredEvents, "retryMaxMs": configuration.retryMaxMs,
                "cookies": site.trackerCookies ?? false, "honorDnt": site.honorDNT ?? false,
            ]
            let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
            return Response(status: .ok, headers: cors, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            return IngestResponses.refused(error, cors: cors)
        }
    }

    /// Whether an `Accept-Encoding` value accepts gzip (`gzip`, `gzip;q=0.5`; not `gzip;q=0`).
    static func acceptsGzip(_ header: String) -> Bool {
        header.split(separator: ",").contains { part in
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard pieces.first == "gzip" || pieces.first == "*" else { return false }
            let q = pieces.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            return q > 0
        }
    }
}
