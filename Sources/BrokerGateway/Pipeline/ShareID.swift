import BrokerCore
import BrokerService
import Foundation

/// Share ids: time-ordered (UUIDv7 layout), so ids sort by creation like the log.
public enum ShareID {
    public static func make(at time: Date) -> String {
        var bytes: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &bytes) { raw -> String in
            let ms = UInt64(max(0, time.timeIntervalSince1970 * 1000))
            for i in 0..<6 { raw[i] = UInt8((ms >> (8 * (5 - UInt64(i)))) & 0xff) }
            RandomBytes.fill(UnsafeMutableRawBufferPointer(rebasing: raw[6..<16]))
            raw[6] = (raw[6] & 0x0f) | 0x70
            raw[8] = (raw[8] & 0x3f) | 0x80
            // 8-4-4-4-12 hex digits written straight into the string's storage.
            return String(unsafeUninitializedCapacity: 36) { out in
                var o = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 { out[o] = UInt8(ascii: "-"); o += 1 }
                    out[o] = Hex.digit(raw[i] >> 4)
                    out[o + 1] = Hex.digit(raw[i] & 0x0f)
                    o += 2
                }
                return o
            }
        }
    }
}
