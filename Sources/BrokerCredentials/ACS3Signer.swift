import BrokerFields
@preconcurrency import Crypto
import Foundation

/// The `ACS3-HMAC-SHA256` request signature (credential type `acs3_hmac_sha256`), for every API style.
///
/// The broker sets `x-acs-version`, `x-acs-date` (UTC, `yyyy-MM-ddTHH:mm:ssZ`), a fresh
/// `x-acs-signature-nonce` and `x-acs-content-sha256` (hex SHA-256 of the body), keeps the
/// operation's `x-acs-action`, and signs:
///
///     CanonicalRequest = method \n path \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
///     StringToSign     = "ACS3-HMAC-SHA256" \n hex(sha256(CanonicalRequest))
///     Signature        = hex(hmac-sha256(AccessKeySecret, StringToSign))
///
/// CanonicalQuery is every query parameter, name and value percent-encoded (RFC 3986: only
/// `A–Z a–z 0–9 - _ . ~` left as is), sorted by name, `name=value` joined by `&`.
/// CanonicalHeaders are `host`, `content-type` when present and every `x-acs-*` header, lower-case
/// names and trimmed values, sorted, each `name:value\n`; SignedHeaders their names joined by `;`.
/// `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=…,Signature=…`.
/// Checked against both worked examples of the published V3 signing documentation (`ACS3SigningTests`).
struct ACS3Signer: Sendable {
    static let algorithm = "ACS3-HMAC-SHA256"

    let accessKeyID: String
    let accessKeySecret: String
    let version: String

    func sign(_ request: inout OutboundRequest, now: Date, nonce: String = RandomHex.make(bytes: 16)) {
        request.setHeader("x-acs-version", version)
        request.setHeader("x-acs-date", Self.timestamp(now))
        request.setHeader("x-acs-signature-nonce", nonce)
        request.setHeader("x-acs-content-sha256", Hex.encode(SHA256.hash(data: request.body)))
        var headers: [(String, String)] = [("host", request.hostHeader.lowercased())]
        for line in request.headers {
            let name = line.name.lowercased()
            guard name.hasPrefix("x-acs-") || name == "content-type" else { continue }
            headers.append((name, line.value.trimmingCharacters(in: .whitespaces)))
        }
        headers.sort { $0.0 < $1.0 }
        let signedHeaders = headers.map(\.0).joined(separator: ";")
        let canonical = [request.method, request.path.isEmpty ? "/" : request.path, Self.canonicalQuery(request.query),
                         headers.map { $0.0 + ":" + $0.1 + "\n" }.joined(), signedHeaders,
                         Hex.encode(SHA256.hash(data: request.body))].joined(separator: "\n")
        let toSign = Self.algorithm + "\n" + Hex.encode(SHA256.hash(data: Array(canonical.utf8)))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: SymmetricKey(data: Array(accessKeySecret.utf8)))
        request.setHeader("Authorization", Self.algorithm + " Credential=" + accessKeyID + ",SignedHeaders=" + signedHeaders
                          + ",Signature=" + Hex.encode(signature))
    }

    /// The query's parameters, decoded, then encoded again the RFC 3986 way and sorted by name.
    static func canonicalQuery(_ query: String) -> String {
        let pairs = RSAParameterSignature.formPairs(query) ?? []
        return pairs.map { (PercentEncoding.encode($0.name), PercentEncoding.encode($0.value)) }
            .sorted { $0.0 < $1.0 }.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}

/// Random bytes in lower-case hex (a signature nonce).
enum RandomHex {
    static func make(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
