import BrokerCore
import Foundation
import Testing

/// `RFC3339.write` (the exposure report's times) writes what Foundation's `ISO8601DateFormatter` with
/// fractional seconds writes for the same microseconds, rounding to the millisecond included.
struct RFC3339Tests {
    @Test func writesWhatFoundationsFormatterWrites() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SystemRandomNumberGenerator()
        var samples: [Int64] = [0, 999, 499, 1_000_000, 86_399_999_500, 951_782_400_000_000 /* 2000-02-29 */,
                                4_102_444_799_999_499 /* 2099-12-31T23:59:59.999 */, 1_795_897_694_639_677]
        for _ in 0..<20_000 { samples.append(Int64.random(in: 0...4_102_444_800_000_000, using: &generator)) }
        for microseconds in samples {
            var out: [UInt8] = []
            RFC3339.write(microseconds: microseconds, to: &out)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(microseconds) / 1_000_000))
            #expect(String(decoding: out, as: UTF8.self) == expected, "\(microseconds)")
        }
    }
}
