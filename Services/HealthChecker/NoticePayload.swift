import Foundation
import TributaryModels

/// The bodies each kind of receiver expects.
enum NoticePayload {
    /// The runbook link of a check kind.
    static func runbook(_ kind: CheckKind, base: String) -> String {
        base.hasSuffix("/") ? base + kind.runbook : base + "/" + kind.runbook
    }

    static func title(_ notice: Notice) -> String {
        switch notice.kind {
        case .resolve: return "[RESOLVED] \(notice.check)"
        case .test: return "[TEST] Tributary health-checker"
        default: return "[\(notice.severity.rawValue.uppercased())] \(notice.check)"
        }
    }

    /// Slack incoming webhook: `text` (shown in notifications) plus blocks.
    static func slack(_ notice: Notice, runbook: String, source: String) -> JSONValue {
        var text = "\(title(notice)): \(notice.summary)"
        if !notice.grouped.isEmpty { text += " (also failing, same cause: \(notice.grouped.joined(separator: ", ")))" }
        if notice.kind != .resolve && notice.kind != .test { text += " Runbook: \(runbook)" }
        return .object([
            "text": .string(text),
            "blocks": .array([
                .object(["type": .string("section"), "text": .object(["type": .string("mrkdwn"), "text": .string(text)])]),
                .object(["type": .string("context"), "elements": .array([
                    .object(["type": .string("mrkdwn"), "text": .string("source \(source) · opened \(ISO8601.format(notice.openedAt))")]),
                ])]),
            ]),
        ])
    }

    /// PagerDuty Events API v2: trigger (also for escalations and repeats, same
    /// `dedup_key`) or resolve.
    static func pagerDuty(_ notice: Notice, routingKey: String, runbook: String, source: String) -> JSONValue {
        if notice.kind == .resolve {
            return .object(["routing_key": .string(routingKey), "event_action": .string("resolve"),
                            "dedup_key": .string(notice.dedupKey)])
        }
        var details = notice.detail
        if !notice.grouped.isEmpty { details["grouped"] = .array(notice.grouped.map { .string($0) }) }
        details["runbook"] = .string(runbook)
        return .object([
            "routing_key": .string(routingKey), "event_action": .string("trigger"), "dedup_key": .string(notice.dedupKey),
            "payload": .object([
                "summary": .string(String("\(notice.check): \(notice.summary)".prefix(1024))),
                "source": .string(source), "severity": .string(notice.severity.rawValue),
                "timestamp": .string(ISO8601.format(notice.at)), "component": .string("tributary"),
                "group": .string(notice.checkKind.rawValue), "class": .string(notice.check),
                "custom_details": .object(details),
            ]),
            "links": .array([.object(["href": .string(runbook), "text": .string("Runbook: \(notice.checkKind.runbook)")])]),
            "client": .string("Tributary health-checker"),
        ])
    }

    /// The generic webhook's JSON (docs/health-checker.md).
    static func webhook(_ notice: Notice, runbook: String, source: String) -> JSONValue {
        .object([
            "version": .int(1), "kind": .string(notice.kind.rawValue), "check": .string(notice.check),
            "checkKind": .string(notice.checkKind.rawValue), "severity": .string(notice.severity.rawValue),
            "summary": .string(notice.summary), "detail": .object(notice.detail),
            "grouped": .array(notice.grouped.map { .string($0) }), "dedupKey": .string(notice.dedupKey),
            "openedAt": .string(ISO8601.format(notice.openedAt)), "at": .string(ISO8601.format(notice.at)),
            "runbook": .string(runbook), "source": .string(source),
        ])
    }
}
