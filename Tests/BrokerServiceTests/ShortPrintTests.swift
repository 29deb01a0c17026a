import BrokerFields
import BrokerService
import Crypto
import Foundation
import Testing

/// Issue 23, item 4: the short prints a folded log entry lists its values by.
@Suite struct ShortPrintTests {
    @Test func aShortPrintIsTheFirstSixBytesOfTheFingerprintInBase64url() throws {
        let key = Array("k1".utf8)
        let fingerprinter = Fingerprinter(key: key)
        for text in ["13800138000", "", "t499", "é 中文 😀", String(repeating: "x", count: 4000)] {
            let mac = Array(HMAC<SHA256>.authenticationCode(for: Array("user.device.push_token".utf8) + [0x1f] + Array(text.utf8),
                                                             using: SymmetricKey(data: key)))
            let expected = Data(mac.prefix(6)).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            let short = fingerprinter.shortPrint(category: "user.device.push_token", value: .string(text))
            #expect(short == expected && short.utf8.count == 8 && !short.contains("="))
            let full = fingerprinter.fingerprint(category: "user.device.push_token", value: .string(text))
            let prints = fingerprinter.prints(category: "user.device.push_token", value: .string(text))
            #expect(prints.short == short && prints.hex == full, "what fingerprint_of searches for")
        }
        #expect(Fingerprinter(key: Array("k2".utf8)).shortPrint(category: "c", value: .string("v"))
                != fingerprinter.shortPrint(category: "c", value: .string("v")))
    }

    /// A record's print of a personal value: the first 16 bytes of the same HMAC, base64url without padding.
    @Test func aRecordPrintIsTheFirstSixteenBytesOfTheFingerprintInBase64url() {
        let key = Array("k1".utf8)
        let fingerprinter = Fingerprinter(key: key)
        for text in ["13800138000", "", "é 中文 😀", String(repeating: "x", count: 4000)] {
            let mac = Array(HMAC<SHA256>.authenticationCode(for: Array("user.contact.phone".utf8) + [0x1f] + Array(text.utf8),
                                                             using: SymmetricKey(data: key)))
            let expected = Data(mac.prefix(16)).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let print = fingerprinter.recordPrint(category: "user.contact.phone", value: .string(text))
            #expect(print == expected && print.utf8.count == 22)
            #expect(fingerprinter.prints(category: "user.contact.phone", value: .string(text)).record == print,
                    "what fingerprint_of searches for")
            #expect(print.hasPrefix(fingerprinter.shortPrint(category: "user.contact.phone", value: .string(text))))
        }
    }

    /// Issue 24: the fingerprint is computed from precomputed HMAC midstates; it must be HMAC-SHA-256
    /// exactly, for keys shorter than, equal to and longer than SHA-256's 64-byte block.
    @Test func theFingerprintIsHMACSHA256ForEveryKeyLength() {
        for keyLength in [0, 1, 32, 63, 64, 65, 200] {
            let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let fingerprinter = Fingerprinter(key: key)
            for text in ["", "13800138000", String(repeating: "é", count: 100)] {
                let mac = HMAC<SHA256>.authenticationCode(for: Array("cat".utf8) + [0x1f] + Array(text.utf8),
                                                          using: SymmetricKey(data: key))
                let expected = mac.map { String(format: "%02x", $0) }.joined()
                #expect(fingerprinter.fingerprint(category: "cat", value: .string(text)) == expected, "key of \(keyLength) bytes")
            }
        }
    }
}
