import BrokerFields
/// Random identifiers and tokens shaped like the providers' (system RNG).
enum RandomText {
    static func bytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func hex(bytes count: Int) -> String {
        Hex.encode(self.bytes(count))
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    static func alphanumeric(_ length: Int) -> String {
        String(decoding: (0..<length).map { _ in self.alphabet.randomElement()! }, as: UTF8.self)
    }

    /// Standard base64 (with `+`, `/`, `=`), like Huawei's access tokens.
    static func base64(bytes count: Int) -> String {
        Base64.encode(self.bytes(count))
    }

    /// An uppercase UUID, like Tencent's `RequestId` and `BizToken`.
    static func uuid() -> String {
        let hex = self.hex(bytes: 16)
        let chars = Array(hex)
        func part(_ range: Range<Int>) -> String { String(chars[range]) }
        return [part(0..<8), part(8..<12), part(12..<16), part(16..<20), part(20..<32)].joined(separator: "-")
    }
}
