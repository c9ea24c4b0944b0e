import Foundation

/// ISO-8601 timestamps as the Segment spec uses them (with or without fractional
/// seconds, any offset), formatted as UTC with milliseconds.
public enum ISO8601 {
    /// Formats `date` as `2026-11-25T18:43:14.123Z`.
    public static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Parses an ISO-8601 timestamp, with or without fractional seconds; `nil` if it is not one.
    public static func parse(_ text: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle().parse(text) { return d }
        return nil
    }
}
