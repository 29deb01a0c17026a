import Foundation

/// Standard base64 through Foundation, with the strict decoding the providers
/// apply to image uploads (no whitespace, correct padding).
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.count % 4 == 0, let data = Data(base64Encoded: text) else { return nil }
        return Array(data)
    }
}
