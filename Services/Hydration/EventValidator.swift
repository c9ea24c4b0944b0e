import Foundation
import TributaryModels

/// Why an event was rejected: which rule, which field, and a message for people.
public struct ValidationFailure: Error, Sendable, Hashable, Codable {
    /// The rule broken, stable for scripts: `invalid_type`, `missing_identity`,
    /// `missing_event_name`, `missing_field`, `invalid_field_type`, `invalid_timestamp`,
    /// `too_many_properties`, `too_long`, `invalid_metric`, `not_an_object`.
    public var rule: String
    /// The field concerned (dotted path), if any.
    public var field: String?
    public var message: String

    public init(rule: String, field: String?, message: String) {
        self.rule = rule
        self.field = field
        self.message = message
    }
}

/// Limits the validator enforces (all in the config, `hydration.limits.*`).
public struct ValidationLimits: Sendable {
    public var maxProperties = 500
    public var maxNameLength = 200
    public var maxIdLength = 255
    public var maxTags = 50

    public init() {}
}

/// Checks one event against the Segment spec and our `metric` type, and reads it into
/// an ``Event``. Pure logic: no I/O.
public struct EventValidator: Sendable {
    public var limits: ValidationLimits

    public init(limits: ValidationLimits = ValidationLimits()) {
        self.limits = limits
    }

    /// Validates `value` (one element of a batch) and returns the typed event.
    public func validate(_ value: JSONValue) throws(ValidationFailure) -> Event {
        guard let object = value.objectValue else {
            throw ValidationFailure(rule: "not_an_object", field: nil, message: "the event is not a JSON object")
        }
        return try validate(EventFields(object))
    }

    /// Validates one event's members, as ``EventFields`` read them, and returns the typed event.
    public func validate(_ fields: EventFields) throws(ValidationFailure) -> Event {
        guard let typeText = fields.type?.stringValue else {
            throw ValidationFailure(rule: "invalid_type", field: "type", message: "type is missing or not a string")
        }
        guard let type = EventType(rawValue: typeText) else {
            throw ValidationFailure(rule: "invalid_type", field: "type",
                                    message: "type must be one of \(EventType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var event = Event(type: type)
        event.messageId = try identifier(fields.messageId, "messageId")
        event.userId = try identifier(fields.userId, "userId")
        event.anonymousId = try identifier(fields.anonymousId, "anonymousId")
        event.groupId = try identifier(fields.groupId, "groupId")
        event.previousId = try identifier(fields.previousId, "previousId")
        event.event = try text(fields.event, "event")
        event.name = try text(fields.name, "name")
        event.category = try text(fields.category, "category")
        event.properties = try dictionary(fields.properties, "properties")
        event.traits = try dictionary(fields.traits, "traits")
        event.context = try dictionary(fields.context, "context")
        event.integrations = try dictionary(fields.integrations, "integrations")
        if let time = try timestamp(fields.timestamp, "timestamp") {
            event.timestamp = time
        } else {
            event.timestamp = try timestamp(fields.originalTimestamp, "originalTimestamp")
        }
        event.sentAt = try timestamp(fields.sentAt, "sentAt")
        if let properties = event.properties, properties.count > limits.maxProperties {
            throw ValidationFailure(rule: "too_many_properties", field: "properties",
                                    message: "\(properties.count) properties; the limit is \(limits.maxProperties)")
        }
        if let traits = event.traits, traits.count > limits.maxProperties {
            throw ValidationFailure(rule: "too_many_properties", field: "traits",
                                    message: "\(traits.count) traits; the limit is \(limits.maxProperties)")
        }
        switch type {
        case .metric:
            try readMetric(fields, into: &event)
            return event
        case .track:
            guard let name = event.event, !name.isEmpty else {
                throw ValidationFailure(rule: "missing_event_name", field: "event", message: "a track call needs an event name")
            }
        case .alias:
            guard event.previousId?.isEmpty == false else {
                throw ValidationFailure(rule: "missing_field", field: "previousId", message: "an alias call needs previousId")
            }
        case .group:
            guard event.groupId?.isEmpty == false else {
                throw ValidationFailure(rule: "missing_field", field: "groupId", message: "a group call needs groupId")
            }
        default:
            break
        }
        guard event.userId?.isEmpty == false || event.anonymousId?.isEmpty == false else {
            throw ValidationFailure(rule: "missing_identity", field: "userId",
                                    message: "the event needs a userId or an anonymousId")
        }
        if type == .alias, event.userId?.isEmpty != false {
            throw ValidationFailure(rule: "missing_field", field: "userId", message: "an alias call needs userId")
        }
        return event
    }

    /// An id field: a string, or a number (SDKs send both), at most `maxIdLength`.
    func identifier(_ value: JSONValue?, _ key: String) throws(ValidationFailure) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?:
            guard s.fits(limits.maxIdLength) else {
                throw ValidationFailure(rule: "too_long", field: key, message: "\(key) is longer than \(limits.maxIdLength) characters")
            }
            return s
        case .int(let i)?: return String(i)
        default:
            throw ValidationFailure(rule: "invalid_field_type", field: key, message: "\(key) must be a string")
        }
    }

    func text(_ value: JSONValue?, _ key: String) throws(ValidationFailure) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?:
            guard s.fits(limits.maxNameLength) else {
                throw ValidationFailure(rule: "too_long", field: key, message: "\(key) is longer than \(limits.maxNameLength) characters")
            }
            return s
        default:
            throw ValidationFailure(rule: "invalid_field_type", field: key, message: "\(key) must be a string")
        }
    }

    func dictionary(_ value: JSONValue?, _ key: String) throws(ValidationFailure) -> [String: JSONValue]? {
        switch value {
        case nil, .null?: return nil
        case .object(let o)?: return o
        default:
            throw ValidationFailure(rule: "invalid_field_type", field: key, message: "\(key) must be an object")
        }
    }

    /// An ISO-8601 timestamp field, kept as sent once it parses.
    func timestamp(_ value: JSONValue?, _ key: String) throws(ValidationFailure) -> String? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?:
            guard ISO8601.parse(s) != nil else {
                throw ValidationFailure(rule: "invalid_timestamp", field: key, message: "\(key) is not an ISO-8601 timestamp")
            }
            return s
        default:
            throw ValidationFailure(rule: "invalid_timestamp", field: key, message: "\(key) must be an ISO-8601 string")
        }
    }

    func readMetric(_ fields: EventFields, into event: inout Event) throws(ValidationFailure) {
        guard let name = event.name, !name.isEmpty else {
            throw ValidationFailure(rule: "invalid_metric", field: "name", message: "a metric needs a name")
        }
        guard let kindText = fields.kind?.stringValue, let kind = MetricKind(rawValue: kindText) else {
            throw ValidationFailure(rule: "invalid_metric", field: "kind",
                                    message: "kind must be one of counter, gauge, timer, histogram")
        }
        guard let value = fields.value?.doubleValue, value.isFinite else {
            throw ValidationFailure(rule: "invalid_metric", field: "value", message: "value must be a finite number")
        }
        var tags: [String: String] = [:]
        if let raw = fields.tags, raw != .null {
            guard let tagObject = raw.objectValue else {
                throw ValidationFailure(rule: "invalid_metric", field: "tags", message: "tags must be an object of strings")
            }
            guard tagObject.count <= limits.maxTags else {
                throw ValidationFailure(rule: "invalid_metric", field: "tags", message: "more than \(limits.maxTags) tags")
            }
            for (key, value) in tagObject {
                switch value {
                case .string(let s): tags[key] = s
                case .int(let i): tags[key] = String(i)
                case .bool(let b): tags[key] = String(b)
                default:
                    throw ValidationFailure(rule: "invalid_metric", field: "tags.\(key)", message: "tag values must be strings")
                }
            }
        }
        event.kind = kind
        event.value = value
        event.tags = tags
    }
}

extension String {
    /// Whether the text has at most `limit` characters; without counting them (grapheme
    /// breaking) when its UTF-8 length already says so, as for almost every id and name.
    func fits(_ limit: Int) -> Bool {
        utf8.count <= limit || count <= limit
    }

    /// The text's first `limit` characters: the text itself, without a copy, when it is
    /// no longer than that.
    func clipped(_ limit: Int) -> String {
        utf8.count <= limit ? self : String(prefix(limit))
    }
}
