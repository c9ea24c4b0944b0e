import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The JSON answers of the ingest API.
enum IngestResponses {
    /// `{"success":true,"batchId":"…"}`: the batch is durable. The id is a string so that
    /// JavaScript clients keep all 64 bits.
    static func accepted(batchID: Int64, cors: HTTPFields) -> Response {
        var headers = cors
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(string: #"{"success":true,"batchId":"\#(batchID)"}"#)))
    }

    /// `{"success":false,"error":{"code":…,"message":…}}` with the refusal's status.
    static func refused(_ error: IngestError, cors: HTTPFields) -> Response {
        var headers = cors
        headers[.contentType] = "application/json"
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        let body: [String: Any] = ["success": false, "error": ["code": error.code, "message": error.message]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return Response(status: HTTPResponse.Status(code: error.status), headers: headers,
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// A transparent 1x1 GIF, for the pixel endpoints.
    static let gif: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    static func pixel(cors: HTTPFields) -> Response {
        var headers = cors
        headers[.contentType] = "image/gif"
        headers[.cacheControl] = "no-store, max-age=0"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: gif)))
    }
}
