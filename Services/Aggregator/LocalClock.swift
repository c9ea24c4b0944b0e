import Foundation

/// A site's wall clock: which local day and hour an instant falls in, in the site's
/// time zone. Days are counted from 1970-01-01, hours from its midnight, both local.
struct LocalClock: Sendable {
    let zone: TimeZone

    init(zone: TimeZone) { self.zone = zone }

    init(identifier: String) {
        zone = TimeZone(identifier: identifier) ?? TimeZone(identifier: "UTC")!
    }

    func localSeconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))).rounded(.down))
    }

    /// The local day of `date`.
    func day(_ date: Date) -> Int32 {
        Int32(Self.floorDiv(localSeconds(date), 86_400))
    }

    /// The local hour of `date` (hours since local 1970-01-01 00:00).
    func hour(_ date: Date) -> Int64 {
        Self.floorDiv(localSeconds(date), 3_600)
    }

    /// The instant the local day starts (the first instant whose local day is `day`).
    func start(ofDay day: Int32) -> Date {
        let local = Double(Int64(day) * 86_400)
        // The offset at the local midnight, found from the offset near it (two tries cover DST changes).
        var guess = Date(timeIntervalSince1970: local - Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: local))))
        guess = Date(timeIntervalSince1970: local - Double(zone.secondsFromGMT(for: guess)))
        return guess
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// `YYYY-MM-DD` of a day number (proleptic Gregorian).
    static func dateText(_ day: Int32) -> String {
        let (y, m, d) = civil(Int64(day))
        return pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2)
    }

    /// `YYYY-MM-DD HH:00:00` of an hour number.
    static func hourText(_ hour: Int64) -> String {
        let day = floorDiv(hour, 24)
        return dateText(Int32(day)) + " " + pad(hour - day * 24, 2) + ":00:00"
    }

    /// The day number of `YYYY-MM-DD`, or `nil`.
    static func day(fromText text: String) -> Int32? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
              (1...12).contains(m), (1...31).contains(d) else { return nil }
        let n = daysFromCivil(y, m, d)
        guard civil(n) == (y, m, d) else { return nil }  // rejects 2026-02-30
        return Int32(n)
    }

    /// Howard Hinnant's days_from_civil.
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func pad(_ n: Int64, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
