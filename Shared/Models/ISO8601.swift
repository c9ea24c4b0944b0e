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
        // Digits by hand into a fixed buffer: String(format:) goes through Foundation's
        // formatter, and temporary arrays per field cost an allocation each (hot path).
        return String(unsafeUninitializedCapacity: 24) { out in
            var i = 0
            func digits(_ value: Int, _ count: Int) {
                var v = value
                for k in stride(from: count - 1, through: 0, by: -1) {
                    out[i + k] = UInt8(48 + v % 10)
                    v /= 10
                }
                i += count
            }
            func byte(_ b: UInt8) { out[i] = b; i += 1 }
            digits(Int(parts.tm_year) + 1900, 4); byte(45)
            digits(Int(parts.tm_mon) + 1, 2); byte(45)
            digits(Int(parts.tm_mday), 2); byte(84)
            digits(Int(parts.tm_hour), 2); byte(58)
            digits(Int(parts.tm_min), 2); byte(58)
            digits(Int(parts.tm_sec), 2); byte(46)
            digits(Int(fraction), 3); byte(90)
            return i
        }
    }

    /// Parses an ISO-8601 timestamp, with or without fractional seconds; `nil` if it is not one.
    public static func parse(_ text: String) -> Date? {
        if let fast = parseCommon(text) { return fast }
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        if let d = try? Date.ISO8601FormatStyle().parse(text) { return d }
        return nil
    }
}

extension ISO8601 {
    /// The forms SDKs send (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`), parsed by hand;
    /// anything else falls back to Foundation's parser.
    static func parseCommon(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { s -> Date? in
            guard s.count >= 20, s[4] == 45, s[7] == 45, s[10] == 84 || s[10] == 116, s[13] == 58, s[16] == 58 else {
                return nil
            }
            func num(_ from: Int, _ len: Int) -> Int? {
                var v = 0
                for i in from..<(from + len) {
                    let c = s[i]
                    guard c >= 48 && c <= 57 else { return nil }
                    v = v * 10 + Int(c - 48)
                }
                return v
            }
            guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
                  let se = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61 else { return nil }
            var i = 19
            var fraction = 0.0
            if i < s.count, s[i] == 46 {
                i += 1
                var scale = 0.1
                let start = i
                while i < s.count, s[i] >= 48, s[i] <= 57 {
                    fraction += Double(s[i] - 48) * scale
                    scale /= 10
                    i += 1
                }
                guard i > start else { return nil }
            }
            var offset = 0
            guard i < s.count else { return nil }
            if s[i] == 90 || s[i] == 122 {
                i += 1
            } else if s[i] == 43 || s[i] == 45, i + 6 == s.count, s[i + 3] == 58, let oh = num(i + 1, 2), let om = num(i + 4, 2) {
                offset = (s[i] == 45 ? -1 : 1) * (oh * 3600 + om * 60)
                i += 6
            } else {
                return nil
            }
            guard i == s.count else { return nil }
            // Days from the civil date (Howard Hinnant's algorithm), then seconds.
            let yy = mo <= 2 ? y - 1 : y
            let era = (yy >= 0 ? yy : yy - 399) / 400
            let yoe = yy - era * 400
            let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            let days = era * 146_097 + doe - 719_468
            let seconds = days * 86_400 + h * 3600 + mi * 60 + se - offset
            return Date(timeIntervalSince1970: Double(seconds) + fraction)
        }
    }
}

extension Int64 {
    /// Division rounding toward negative infinity.
    func floorDivided(by divisor: Int64) -> Int64 {
        let q = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? q - 1 : q
    }
}
