import BrokerCore
import BrokerFields
@preconcurrency import Crypto
import Foundation

/// Request signing with HMAC-SHA256 in the "TC3" scheme (a cloud API v3 family).
///
/// Per request: `X-TC-Timestamp` (Unix seconds), `X-TC-Version`, `X-TC-Region`
/// when configured, and
/// `Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
/// SignedHeaders=content-type;host, Signature=<hex>`, where
/// - canonical request = `METHOD\npath\nquery\ncontent-type:<value, trimmed,
///   lower-cased>\nhost:<Host header>\n\ncontent-type;host\nhex(sha256(body))`,
/// - string to sign = `TC3-HMAC-SHA256\n<timestamp>\n<date>/<service>/tc3_request\n
///   hex(sha256(canonical request))`, `date` being the UTC date of the timestamp,
/// - key = HMAC(HMAC(HMAC("TC3" + secret key, date), service), "tc3_request"),
///   signature = hex(HMAC(key, string to sign)).
/// The signed content type and host are exactly what goes on the wire: a request
/// without `Content-Type` gets one (its body format's media type, or the form
/// type for a bodiless request), and the host is `OutboundRequest.hostHeader`.
struct TC3Signer: Sendable {
    static let algorithm = "TC3-HMAC-SHA256"
    static let signedHeaders = "content-type;host"

    let secretID: String
    /// `"TC3" + secret key` as bytes: the first HMAC key of the chain.
    let dateKey: [UInt8]
    let service: String
    let version: String
    let region: String?

    init(secretID: String, secretKey: String, service: String, version: String, region: String?) {
        self.secretID = secretID
        self.dateKey = Array(("TC3" + secretKey).utf8)
        self.service = service
        self.version = version
        self.region = region
    }

    func sign(_ request: inout OutboundRequest, timestamp: Int64) {
        if request.headerValue("Content-Type") == nil {
            request.setHeader("Content-Type", request.bodyFormat.mediaType ?? "application/x-www-form-urlencoded")
        }
        request.setHeader("X-TC-Timestamp", String(timestamp))
        request.setHeader("X-TC-Version", version)
        if let region { request.setHeader("X-TC-Region", region) }
        let contentType = request.headerValue("Content-Type") ?? ""
        let date = Self.utcDate(timestamp)
        let canonical = Self.canonicalRequest(method: request.method, path: request.path.isEmpty ? "/" : request.path,
                                              query: request.query, contentType: contentType,
                                              host: request.hostHeader, body: request.body)
        let scope = date + "/" + service + "/tc3_request"
        let toSign = Self.stringToSign(timestamp: timestamp, scope: scope, canonicalRequest: canonical)
        let signature = Hex.encode(Self.signingKey(dateKey: dateKey, date: date, service: service, toSign: toSign))
        request.setHeader("Authorization", Self.algorithm + " Credential=" + secretID + "/" + scope
                          + ", SignedHeaders=" + Self.signedHeaders + ", Signature=" + signature)
    }

    static func canonicalRequest(method: String, path: String, query: String, contentType: String,
                                 host: String, body: [UInt8]) -> String {
        let type = contentType.trimmingCharacters(in: .whitespaces).lowercased()
        return method + "\n" + path + "\n" + query + "\n"
            + "content-type:" + type + "\n" + "host:" + host.lowercased() + "\n" + "\n"
            + signedHeaders + "\n" + Hex.encode(SHA256.hash(data: body))
    }

    static func stringToSign(timestamp: Int64, scope: String, canonicalRequest: String) -> String {
        algorithm + "\n" + String(timestamp) + "\n" + scope + "\n" + Hex.encode(SHA256.hash(data: Array(canonicalRequest.utf8)))
    }

    /// The key chain and the final MAC over `toSign`.
    static func signingKey(dateKey: [UInt8], date: String, service: String, toSign: String) -> [UInt8] {
        func mac(_ key: [UInt8], _ message: String) -> [UInt8] {
            Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: key)))
        }
        let kDate = mac(dateKey, date)
        let kService = mac(kDate, service)
        let kSigning = mac(kService, "tc3_request")
        return mac(kSigning, toSign)
    }

    /// `YYYY-MM-DD` of a Unix time in UTC (the policy engine's calendar; no formatter, no locale).
    static func utcDate(_ seconds: Int64) -> String {
        CalendarDay(Date(timeIntervalSince1970: TimeInterval(seconds))).description
    }

}
