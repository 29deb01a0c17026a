import BrokerCore
import BrokerService
import Foundation
import Testing

/// `RFC3339.write` with `ExposureReport.milliseconds` (the exposure report's times) writes what
/// Foundation's `ISO8601DateFormatter` with fractional seconds writes for the same instant, to the digit
/// (its rounding of exact half milliseconds, which depends on the double, included).
struct RFC3339Tests {
    @Test func writesWhatFoundationsFormatterWrites() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 999, 500, 499, 1_000, 226_996_676_487_500, 1_000_000, 86_399_999_500, 951_782_400_000_000 /* 2000-02-29 */,
                                4_102_444_799_999_499 /* 2099-12-31T23:59:59.999 */, 1_795_897_694_639_677]
        for _ in 0..<200_000 { samples.append(Int64.random(in: 0...4_102_444_800_000_000, using: &generator)) }
        for microseconds in samples {
            var out: [UInt8] = []
            let date = Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
            RFC3339.write(milliseconds: ExposureReport.milliseconds(date), to: &out)
            let expected = formatter.string(from: date)
            #expect(String(decoding: out, as: UTF8.self) == expected, "\(microseconds)")
        }
    }
}
