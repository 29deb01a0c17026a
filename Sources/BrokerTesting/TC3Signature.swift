import BrokerFields
@preconcurrency import Crypto
import Foundation

/// Tencent Cloud API 3.0 request signing (`TC3-HMAC-SHA256`), as the FaceID
/// simulator verifies it and as a test client signs with it.
///
/// Follows Tencent's "Signature v3" document (the worked example with SecretKey
/// `Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`, timestamp 1551113065, service `cvm` gives
/// signature `72e494ea…5168`; the tests check it) and tencentcloud-sdk-go's
/// `sendWithSignatureV3`:
/// - canonical request: `METHOD\n/\n<query>\n<canonical headers>\n<signed headers>\n<sha256hex(body)>`,
///   canonical headers being `name:value\n` for each signed header, name and value
///   lowercased and trimmed, sorted by name;
/// - string to sign: `TC3-HMAC-SHA256\n<timestamp>\n<date>/<service>/tc3_request\n<sha256hex(canonical request)>`;
/// - key chain: `HMAC("TC3"+SecretKey, date)` → `HMAC(·, service)` → `HMAC(·, "tc3_request")`;
///   signature = hex(HMAC(signing key, string to sign)).
/// `date` is the UTC date (`YYYY-MM-DD`) of the timestamp.
public enum TC3Signature {
    public static let algorithm = "TC3-HMAC-SHA256"

    /// The canonical request. `headers` are the signed headers (name → value as
    /// sent); their names, lowercased and sorted, form `SignedHeaders`.
    public static func canonicalRequest(
        method: String, path: String = "/", query: String = "",
        headers: [(name: String, value: String)], body: [UInt8]
    ) -> String {
        let normalized = headers
            .map { (name: self.trim($0.name.lowercased()), value: self.trim($0.value.lowercased())) }
            .sorted { $0.name < $1.name }
        let canonicalHeaders = normalized.map { "\($0.name):\($0.value)\n" }.joined()
        let signedHeaders = normalized.map(\.name).joined(separator: ";")
        return [method, path, query, canonicalHeaders, signedHeaders, self.sha256Hex(body)].joined(separator: "\n")
    }

    /// The string to sign.
    public static func stringToSign(timestamp: Int64, service: String, canonicalRequest: String) -> String {
        let date = self.utcDate(timestamp)
        return [self.algorithm, String(timestamp), "\(date)/\(service)/tc3_request",
                self.sha256Hex(Array(canonicalRequest.utf8))].joined(separator: "\n")
    }

    /// The hex signature of `stringToSign`.
    public static func signature(secretKey: String, date: String, service: String, stringToSign: String) -> String {
        let secretDate = self.hmac(key: Array(("TC3" + secretKey).utf8), date)
        let secretService = self.hmac(key: secretDate, service)
        let secretSigning = self.hmac(key: secretService, "tc3_request")
        return Hex.encode(self.hmac(key: secretSigning, stringToSign))
    }

    /// The complete `Authorization` header value for a request.
    public static func authorization(
        secretID: String, secretKey: String, service: String, timestamp: Int64,
        method: String = "POST", headers: [(name: String, value: String)], body: [UInt8]
    ) -> String {
        let canonical = self.canonicalRequest(method: method, headers: headers, body: body)
        let toSign = self.stringToSign(timestamp: timestamp, service: service, canonicalRequest: canonical)
        let date = self.utcDate(timestamp)
        let signature = self.signature(secretKey: secretKey, date: date, service: service, stringToSign: toSign)
        let signedHeaders = headers.map { self.trim($0.name.lowercased()) }.sorted().joined(separator: ";")
        return "\(self.algorithm) Credential=\(secretID)/\(date)/\(service)/tc3_request, "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// `YYYY-MM-DD` of a Unix timestamp, in UTC.
    public static func utcDate(_ timestamp: Int64) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: TimeInterval(timestamp)))
        func pad(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.year, 4))-\(pad(parts.month, 2))-\(pad(parts.day, 2))"
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: bytes))
    }

    private static func hmac(key: [UInt8], _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
    }

    private static func trim(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespaces)
    }
}
