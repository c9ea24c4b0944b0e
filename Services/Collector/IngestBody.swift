import Foundation

/// The Segment endpoints a body can arrive on; all but `batch` carry one event.
enum IngestEndpoint: String, Sendable, CaseIterable {
    case batch, track, identify, page, screen, group, alias
}

/// What the collector checks of a body before saving it: size limits, shape, write key.
struct IngestLimits: Sendable {
    var maximumEventBytes = 32 * 1024
    var maximumEventsPerBatch = 2_500
    var maximumDepth = 64
}

/// A body reduced to what is saved: the batch payload in the `{"batch":[…]}` shape
/// (single events wrapped, the `writeKey` member removed so keys are never stored),
/// its event count and the write key it carried, if any.
struct IngestBody: Sendable {
    var payload: [UInt8]
    var eventCount: Int
    var writeKey: String?

    /// Checks and normalises `body` received on `endpoint`.
    static func parse(_ body: [UInt8], endpoint: IngestEndpoint, limits: IngestLimits) throws(IngestError) -> IngestBody {
        let shape: JSONShape
        do {
            shape = try body.withUnsafeBufferPointer { buffer throws(JSONShape.Failure) in
                try JSONShape.scan(buffer, limits: .init(maximumDepth: limits.maximumDepth))
            }
        } catch {
            throw IngestError.badRequest("malformed_json", "\(error.message) (at byte \(error.offset))")
        }
        var writeKey: String?
        if let member = shape.member("writeKey") {
            guard member.valueKind == .string else {
                throw IngestError.badRequest("invalid_write_key", "writeKey must be a string")
            }
            writeKey = try? JSONDecoder().decode(String.self, from: Data(body[member.value]))
        }
        let stripped = removingWriteKey(from: body, shape: shape)
        switch endpoint {
        case .batch:
            guard let batch = shape.member("batch") else {
                throw IngestError.badRequest("invalid_batch", "the body has no \"batch\" array")
            }
            guard batch.valueKind == .array else {
                throw IngestError.badRequest("invalid_batch", "\"batch\" must be an array of events")
            }
            guard !shape.batchElements.isEmpty else {
                throw IngestError.badRequest("empty_batch", "\"batch\" has no events")
            }
            guard shape.batchElements.count <= limits.maximumEventsPerBatch else {
                throw IngestError(status: 413, code: "too_many_events",
                                  message: "the batch has \(shape.batchElements.count) events; the limit is \(limits.maximumEventsPerBatch)")
            }
            for (i, element) in shape.batchElements.enumerated() {
                guard element.kind == .object else {
                    throw IngestError.badRequest("invalid_event", "batch[\(i)] is not a JSON object")
                }
                guard element.range.count <= limits.maximumEventBytes else {
                    throw IngestError(status: 413, code: "event_too_large",
                                      message: "batch[\(i)] is \(element.range.count) bytes; the limit is \(limits.maximumEventBytes)")
                }
            }
            return IngestBody(payload: stripped, eventCount: shape.batchElements.count, writeKey: writeKey)
        default:
            guard stripped.count <= limits.maximumEventBytes else {
                throw IngestError(status: 413, code: "event_too_large",
                                  message: "the event is \(stripped.count) bytes; the limit is \(limits.maximumEventBytes)")
            }
            var event = stripped
            if let type = shape.member("type") {
                let expected = "\"\(endpoint.rawValue)\""
                guard type.valueKind == .string, Array(body[type.value]) == Array(expected.utf8) else {
                    throw IngestError.badRequest("type_mismatch", "the event's type does not match /v1/\(endpoint.rawValue)")
                }
            } else {
                // Insert the endpoint's type as the first member.
                let open = event.firstIndex(of: UInt8(ascii: "{"))!
                let next = event[(open + 1)...].first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
                let isEmpty = next == UInt8(ascii: "}")
                let member = "\"type\":\"\(endpoint.rawValue)\"" + (isEmpty ? "" : ",")
                event.insert(contentsOf: Array(member.utf8), at: open + 1)
            }
            return IngestBody(payload: Array("{\"batch\":[".utf8) + event + Array("]}".utf8), eventCount: 1,
                              writeKey: writeKey)
        }
    }

    /// The body without its top-level `writeKey` member (and the comma that separated it).
    static func removingWriteKey(from body: [UInt8], shape: JSONShape) -> [UInt8] {
        guard let i = shape.members.lastIndex(where: { $0.key == "writeKey" }) else { return body }
        let members = shape.members
        let cut: Range<Int>
        if i + 1 < members.count {
            cut = members[i].span.lowerBound..<members[i + 1].span.lowerBound
        } else if i > 0 {
            cut = members[i - 1].span.upperBound..<members[i].span.upperBound
        } else {
            cut = members[i].span
        }
        var result = body
        result.removeSubrange(cut)
        if shape.members.filter({ $0.key == "writeKey" }).count > 1 {
            // A repeated key: remove the others too, by scanning the result again.
            if let again = try? result.withUnsafeBufferPointer({ buffer throws(JSONShape.Failure) in try JSONShape.scan(buffer) }) {
                return removingWriteKey(from: result, shape: again)
            }
        }
        return result
    }
}

/// A refusal: the HTTP status, a stable machine-readable code and a message saying
/// what is wrong. Never contains the write key or event data.
struct IngestError: Error, Sendable, Equatable {
    var status: Int
    var code: String
    var message: String
    /// Seconds a client should wait before retrying (429, 503).
    var retryAfter: Int?

    init(status: Int, code: String, message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    static func badRequest(_ code: String, _ message: String) -> IngestError {
        IngestError(status: 400, code: code, message: message)
    }
}
