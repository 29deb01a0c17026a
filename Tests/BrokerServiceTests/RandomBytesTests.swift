import BrokerService
import Testing

/// Share ids and sealing nonces come from a pool refilled from the kernel's CSPRNG in one read
/// (issue 24): every byte is handed out once, and pools do not repeat.
@Suite struct RandomBytesTests {
    @Test func theBytesHandedOutDoNotRepeatAcrossRefills() {
        var seen = Set<[UInt8]>()
        var ones = 0
        for _ in 0..<2_000 {   // 24 KiB: several refills of the 4 KiB pool
            var chunk = [UInt8](repeating: 0, count: 12)
            chunk.withUnsafeMutableBytes { RandomBytes.fill($0) }
            #expect(seen.insert(chunk).inserted, "a 96-bit value came out twice")
            ones += chunk.reduce(0) { $0 + $1.nonzeroBitCount }
        }
        // About half the bits are set (2,000 × 96 bits; 6 standard deviations of slack).
        #expect(abs(ones - 96_000) < 1_400, "\(ones) bits set")
    }
}
