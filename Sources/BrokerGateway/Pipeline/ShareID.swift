import BrokerCore
import Foundation

/// Share ids: time-ordered (UUIDv7 layout), so ids sort by creation like the log.
public enum ShareID {
    public static func make(at time: Date) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let ms = UInt64(max(0, time.timeIntervalSince1970 * 1000))
        for i in 0..<6 { bytes[i] = UInt8((ms >> (8 * (5 - UInt64(i)))) & 0xff) }
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        for i in 6..<14 { bytes[i] = UInt8(truncatingIfNeeded: high >> (8 * UInt64(i - 6))) }
        for i in 14..<16 { bytes[i] = UInt8(truncatingIfNeeded: low >> (8 * UInt64(i - 14))) }
        bytes[6] = (bytes[6] & 0x0f) | 0x70
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = Array(Hex.encode(bytes))
        return String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
    }
}
