import Foundation
import TributaryModels

/// Event time as hydration decides it: the client's timestamp corrected for its clock
/// skew, clamped when in the future, flagged when old.
public struct EventClock: Sendable {
    /// How far past receipt a corrected time may be before it is clamped (seconds).
    public var futureToleranceSeconds: Double = 60
    /// Events older than this at receipt are flagged `old` (seconds).
    public var maximumAgeSeconds: Double = 30 * 86_400

    public init(futureToleranceSeconds: Double = 60, maximumAgeSeconds: Double = 30 * 86_400) {
        self.futureToleranceSeconds = futureToleranceSeconds
        self.maximumAgeSeconds = maximumAgeSeconds
    }

    /// The decided time and the flags (`clock_corrected`, `future_clamped`, `old`).
    ///
    /// With both `timestamp` and `sentAt` (the event's, else the batch's), the client's
    /// clock offset is removed: `receivedAt − (sentAt − timestamp)`. With only
    /// `timestamp` it is used as is; with neither, `receivedAt`.
    public func resolve(timestamp: String?, sentAt: String?, receivedAt: Date) -> (Date, [String]) {
        var flags: [String] = []
        var time = receivedAt
        if let t = timestamp.flatMap(ISO8601.parse) {
            if let s = sentAt.flatMap(ISO8601.parse) {
                time = receivedAt.addingTimeInterval(-(s.timeIntervalSince(t)))
                if abs(s.timeIntervalSince(receivedAt)) > 1 { flags.append("clock_corrected") }
            } else {
                time = t
            }
        }
        if time.timeIntervalSince(receivedAt) > futureToleranceSeconds {
            time = receivedAt
            flags.append("future_clamped")
        }
        if receivedAt.timeIntervalSince(time) > maximumAgeSeconds {
            flags.append("old")
        }
        return (time, flags)
    }
}
