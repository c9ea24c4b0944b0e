import Foundation

/// ISO-8601 timestamps as the Segment spec uses them (with or without fractional
/// seconds, any offset), formatted as UTC with milliseconds.
public enum ISO8601 {
    /// Formats `date` as `2026-11-25T18:43:14.123Z`, rounded to the nearest millisecond
    /// (integer arithmetic, so a time that is a whole number of milliseconds formats
    /// exactly, whatever its binary floating-point representation).
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(milliseconds.floorDivided(by: 1000))
        let fraction = milliseconds - Int64(seconds) * 1000
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", parts.tm_year + 1900, parts.tm_mon + 1,
                      parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, fraction)
    }

    /// Parses an ISO-8601 timestamp, with or without fractional seconds; `nil` if it is not one.
    public static func parse(_ text: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle().parse(text) { return d }
        return nil
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    func floorDivided(by divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}
