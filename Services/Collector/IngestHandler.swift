import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import TributaryModels

/// Handles one ingest request: content checks, decoding, shape, write key, site state,
/// origin, rate limit and backpressure, then the durable save. No per-event processing.
struct IngestHandler: Sendable {
    let configuration: CollectorConfiguration
    let sites: SiteDirectory
    let writer: BatchWriter
    let monitor: DependencyMonitor
    let rateLimiter: RateLimiter
    let addresses: ClientAddressResolver
    let ids: SnowflakeID
    let logger: Logger
    let eventsAccepted = Counter(label: "tributary_events_ingested_total", dimensions: [("service", "collector")])

    /// A POST to `/v1/<endpoint>`.
    func post(_ request: Request, context: IngestContext, endpoint: IngestEndpoint) async -> Response {
        let cors = corsHeaders(request)
        do {
            let body = try await readBody(request)
            let parsed = try IngestBody.parse(body, endpoint: endpoint, limits: configuration.limits)
            let batchID = try await accept(parsed, request: request, context: context)
            return IngestResponses.accepted(batchID: batchID, cors: cors)
        } catch let error as IngestError {
            return IngestResponses.refused(error, cors: cors)
        } catch {
            logger.error("ingest failed", metadata: ["error": "\(error)"])
            return IngestResponses.refused(IngestError(status: 500, code: "internal", message: "internal error"), cors: cors)
        }
    }

    /// A GET to `/v1/pixel/<track|page>?data=<base64 JSON>`.
    func pixel(_ request: Request, context: IngestContext, endpoint: IngestEndpoint) async -> Response {
        let cors = corsHeaders(request)
        do {
            guard let data = request.uri.queryParameters.get("data") else {
                throw IngestError.badRequest("missing_data", "the data query parameter is required")
            }
            guard let decoded = Self.base64(String(data)) else {
                throw IngestError.badRequest("invalid_data", "the data query parameter is not base64")
            }
            guard decoded.count <= configuration.limits.maximumEventBytes else {
                throw IngestError(status: 413, code: "event_too_large",
                                  message: "the event is \(decoded.count) bytes; the limit is \(configuration.limits.maximumEventBytes)")
            }
            let parsed = try IngestBody.parse(decoded, endpoint: endpoint, limits: configuration.limits)
            _ = try await accept(parsed, request: request, context: context)
            return IngestResponses.pixel(cors: cors)
        } catch let error as IngestError {
            return IngestResponses.refused(error, cors: cors)
        } catch {
            logger.error("pixel failed", metadata: ["error": "\(error)"])
            return IngestResponses.refused(IngestError(status: 500, code: "internal", message: "internal error"), cors: cors)
        }
    }

    /// The site of an active write key, if it is enabled and accepts requests from the
    /// request's `Origin` (a request without one, from a server, is not a browser's).
    func authorisedSite(key: String?, request: Request) throws(IngestError) -> SiteRecord {
        guard let key, !key.isEmpty else {
            throw IngestError(status: 401, code: "missing_write_key",
                              message: "send the write key as the Basic auth username or as writeKey in the body")
        }
        guard let site = sites.site(forKey: key) else {
            throw IngestError(status: 401, code: "invalid_write_key", message: "the write key is unknown or revoked")
        }
        guard !site.isDisabled else {
            throw IngestError(status: 403, code: "site_disabled", message: "the site is disabled")
        }
        if let origin = request.headers[.origin], !site.allowedOrigins.isEmpty, !site.allowedOrigins.contains(origin.lowercased()) {
            throw IngestError(status: 403, code: "origin_not_allowed", message: "the site does not accept requests from this origin")
        }
        return site
    }

    /// Authenticates, applies the site's rules and the pipeline's backpressure, saves.
    private func accept(_ body: IngestBody, request: Request, context: IngestContext) async throws -> Int64 {
        let site = try authorisedSite(key: Self.basicUsername(request.headers[.authorization]) ?? body.writeKey, request: request)
        if let wait = rateLimiter.acquire(site: site.siteID, rate: site.rateLimitPerSecond ?? configuration.rateLimitPerSecond) {
            throw IngestError(status: 429, code: "rate_limited", message: "too many requests for this site", retryAfter: wait)
        }
        if monitor.queueDepth > configuration.maxQueueDepth {
            throw IngestError(status: 503, code: "backpressure", message: "the pipeline is behind; retry later",
                              retryAfter: configuration.retryAfterSeconds)
        }
        let peer = context.remoteAddress?.ipAddress
        let record = RawBatchRecord(
            batchID: ids.next(), siteID: site.siteID,
            receivedAt: Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000),
            clientIP: addresses.clientAddress(peer: peer, forwardedFor: request.headers[.xForwardedFor]),
            userAgent: request.headers[.userAgent].map(Self.cleanText),
            eventCount: body.eventCount, payload: String(decoding: body.payload, as: UTF8.self))
        _ = try await writer.save(record)
        eventsAccepted.increment(by: body.eventCount)
        return record.batchID
    }

    /// The body, checked for type and size and gzip-decoded.
    private func readBody(_ request: Request) async throws(IngestError) -> [UInt8] {
        if let type = request.headers[.contentType] {
            let media = type.split(separator: ";").first.map { Self.trimmed($0).lowercased() } ?? ""
            guard media == "application/json" || media == "text/plain" else {
                throw IngestError(status: 415, code: "unsupported_media_type",
                                  message: "send application/json or text/plain, not \(media.prefix(64))")
            }
        }
        let encoding = request.headers[.contentEncoding].map { Self.trimmed($0).lowercased() }
        guard encoding == nil || encoding == "gzip" || encoding == "identity" else {
            throw IngestError(status: 415, code: "unsupported_encoding", message: "Content-Encoding must be gzip or identity")
        }
        let limit = configuration.maxRequestBytes
        var buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw IngestError(status: 413, code: "request_too_large", message: "the request body exceeds \(limit) bytes")
        }
        if encoding == "gzip" {
            let trailer = Self.gzipTrailer(buffer)
            do {
                buffer = try buffer.decompress(with: .gzip(), maxSize: limit)
                // zlib stops quietly at the end of what it was given: check the trailer
                // (CRC-32 and length of the data) so a truncated body is refused.
                guard let trailer, trailer.size == UInt32(truncatingIfNeeded: buffer.readableBytes),
                      trailer.crc == CRC32.checksum(buffer.readableBytesView) else {
                    throw IngestError.badRequest("invalid_gzip", "the body is not valid gzip (truncated or corrupt)")
                }
            } catch let error as IngestError {
                throw error
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw IngestError(status: 413, code: "request_too_large",
                                  message: "the decompressed body exceeds \(limit) bytes")
            } catch {
                throw IngestError.badRequest("invalid_gzip", "the body is not valid gzip (truncated or corrupt)")
            }
        }
        guard buffer.readableBytes > 0 else { throw IngestError.badRequest("empty_body", "the body is empty") }
        return Array(buffer.readableBytesView)
    }

    /// The CRC-32 and length a gzip body's last eight bytes declare (little-endian).
    static func gzipTrailer(_ buffer: ByteBuffer) -> (crc: UInt32, size: UInt32)? {
        let bytes = buffer.readableBytesView
        guard bytes.count >= 18 else { return nil }
        let tail = Array(bytes.suffix(8))
        func le(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(tail[at + $1]) << (8 * $1) } }
        return (le(0), le(4))
    }

    /// CORS headers for a request with an `Origin`: the origin echoed (sites restrict
    /// origins per write key when the request arrives).
    func corsHeaders(_ request: Request) -> HTTPFields {
        var headers = HTTPFields()
        if let origin = request.headers[.origin] {
            headers[.accessControlAllowOrigin] = origin
            // The tracker reads Retry-After of a 429 or 503 to know when to send again.
            headers[.accessControlExposeHeaders] = "Retry-After"
            headers[.vary] = "Origin"
        }
        return headers
    }

    /// The preflight answer: allowed if any site accepts the origin.
    func preflight(_ request: Request) -> Response {
        guard let origin = request.headers[.origin], sites.anySiteAllows(origin: origin) else {
            return Response(status: .noContent)
        }
        var headers = corsHeaders(request)
        headers[.accessControlAllowMethods] = "POST, GET, OPTIONS"
        headers[.accessControlAllowHeaders] = "Content-Type, Authorization, Content-Encoding"
        headers[.accessControlMaxAge] = "86400"
        return Response(status: .noContent, headers: headers)
    }

    static func basicUsername(_ header: String?) -> String? {
        guard let header, header.lowercased().hasPrefix("basic ") else { return nil }
        guard let data = Data(base64Encoded: trimmed(header.dropFirst(6))) else {
            return nil
        }
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// Without the spaces and tabs HTTP allows around a header value (Foundation's
    /// `trimmingCharacters` bridges through NSString: 2 % of the collector's CPU).
    static func trimmed(_ text: some StringProtocol) -> String {
        var s = Substring(text)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }

    /// Standard or URL-safe base64, with or without padding.
    static func base64(_ text: String) -> [UInt8]? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            .replacingOccurrences(of: " ", with: "+")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s).map(Array.init)
    }

    /// Header text made safe to store: valid UTF-8, no NUL, at most 1,024 characters.
    static func cleanText(_ text: String) -> String {
        String(text.replacingOccurrences(of: "\u{0}", with: "").prefix(1024))
    }
}
