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
        // Digits by hand: String(format:) goes through Foundation's formatter (slow on hot paths).
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var v = value
            var buffer = [UInt8](repeating: 48, count: count)
            for i in stride(from: count - 1, through: 0, by: -1) {
                buffer[i] = UInt8(48 + v % 10)
                v /= 10
            }
            out.append(contentsOf: buffer)
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(45)
        digits(Int(parts.tm_mon) + 1, 2); out.append(45)
        digits(Int(parts.tm_mday), 2); out.append(84)
        digits(Int(parts.tm_hour), 2); out.append(58)
        digits(Int(parts.tm_min), 2); out.append(58)
        digits(Int(parts.tm_sec), 2); out.append(46)
        digits(Int(fraction), 3); out.append(90)
        return String(decoding: out, as: UTF8.self)
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
