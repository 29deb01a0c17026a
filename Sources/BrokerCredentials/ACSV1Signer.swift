@preconcurrency import Crypto
import Foundation

/// The ACS V1 `HMAC-SHA1` RPC signature (credential type `acs_v1_hmac_sha1`), the one the pre-V3
/// RPC SDKs make, for an adapter that says so.
///
/// The broker adds the common parameters to the query: `Format=JSON`, `Version`, `AccessKeyId`,
/// `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `SignatureNonce`, `Timestamp` (UTC,
/// `yyyy-MM-ddTHH:mm:ssZ`), `Action` (the request's `x-acs-action`) and `RegionId` when configured,
/// then signs every parameter of the query and the form body:
///
///     Canonical    = each name=value RFC 3986-encoded (`A–Z a–z 0–9 - _ . ~` as is), sorted by name, joined by &
///     StringToSign = method + "&%2F&" + encode(Canonical)
///     Signature    = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
///
/// and appends `Signature`. A caller's own V1 parameters are credential fields the policy engine
/// already dropped.
struct ACSV1Signer: Sendable {
    let accessKeyID: String
    let accessKeySecret: String
    let version: String
    let regionID: String?

    func sign(_ request: inout OutboundRequest, now: Date, nonce: String = RandomHex.make(bytes: 16)) {
        var common: [(String, String)] = [("Format", "JSON"), ("Version", version), ("AccessKeyId", accessKeyID),
                                          ("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"),
                                          ("SignatureNonce", nonce), ("Timestamp", ACS3Signer.timestamp(now))]
        if let action = request.headerValue("x-acs-action") { common.append(("Action", action)) }
        if let regionID { common.append(("RegionId", regionID)) }
        for (name, value) in common { request.appendQueryParameter(name, value) }
        let signature = Self.signature(method: request.method, query: request.query,
                                       form: request.bodyFormat == .form ? String(decoding: request.body, as: UTF8.self) : "",
                                       secret: accessKeySecret)
        request.appendQueryParameter("Signature", signature)
    }

    /// The signature over a request's query and form parameters (the simulator checks with the same rule).
    static func signature(method: String, query: String, form: String, secret: String) -> String {
        let pairs = (RSAParameterSignature.formPairs(query) ?? []) + (RSAParameterSignature.formPairs(form) ?? [])
        let canonical = pairs.filter { $0.name != "Signature" }
            .map { (PercentEncoding.encode($0.name), PercentEncoding.encode($0.value)) }
            .sorted { $0.0 < $1.0 }.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
        let toSign = method + "&%2F&" + PercentEncoding.encode(canonical)
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(toSign.utf8), using: SymmetricKey(data: Array((secret + "&").utf8)))
        return Data(mac).base64EncodedString()
    }
}
