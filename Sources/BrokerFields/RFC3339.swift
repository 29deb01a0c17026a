/// RFC 3339 times in UTC with milliseconds (`2026-11-17T18:03:33.025Z`): what `ISO8601DateFormatter`
/// with `.withInternetDateTime, .withFractionalSeconds` writes, written here by arithmetic instead.
/// ICU's formatter costs several microseconds a time on Linux, and a report writes two a row.
public enum RFC3339 {
    /// "00", "01", … "99", as bytes.
    private static let pairs: [UInt8] = (0..<100).flatMap { [UInt8(ascii: "0") + UInt8($0 / 10), UInt8(ascii: "0") + UInt8($0 % 10)] }

    /// Appends the time `milliseconds` after 1970-01-01T00:00:00Z.
    public static func write(milliseconds: Int64, to out: inout [UInt8]) {
        let perDay: Int64 = 86_400_000
        var milliseconds = milliseconds
        var days = milliseconds / perDay
        milliseconds %= perDay
        if milliseconds < 0 { days -= 1; milliseconds += perDay }
        let (year, month, day) = civil(days: days)
        // Two digits at a time from a table: a division per pair, not per digit.
        func pair(_ value: Int64) {
            let index = Int(value) * 2
            out.append(pairs[index])
            out.append(pairs[index + 1])
        }
        out.reserveCapacity(out.count + 24)
        let fraction = milliseconds % 1000
        pair(year / 100 % 100); pair(year % 100); out.append(UInt8(ascii: "-")); pair(month); out.append(UInt8(ascii: "-")); pair(day)
        out.append(UInt8(ascii: "T"))
        pair(milliseconds / 3_600_000); out.append(UInt8(ascii: ":"))
        pair(milliseconds / 60_000 % 60); out.append(UInt8(ascii: ":"))
        pair(milliseconds / 1000 % 60); out.append(UInt8(ascii: "."))
        out.append(UInt8(ascii: "0") + UInt8(fraction / 100)); pair(fraction % 100); out.append(UInt8(ascii: "Z"))
    }

    /// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `civil_from_days`), exact.
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
