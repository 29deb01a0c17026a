import BrokerCore
@preconcurrency import _CryptoExtras
import Crypto
import Foundation

/// Alipay's open-platform signature (`sign_type=RSA2`): SHA256withRSA (PKCS #1 v1.5)
/// over every non-empty parameter except `sign` (and, for notices, `sign_type`),
/// sorted by name and joined as `k=v&k=v` with raw (decoded) values, in Base64.
/// PROVIDERS.md, "Alipay login".
public enum AlipayRSA2 {
    /// The text that is signed.
    public static func content(_ parameters: [(name: String, value: String)], excluding: Set<String>) -> String {
        parameters.filter { !$0.value.isEmpty && !excluding.contains($0.name) }
            .sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
            .map { "\($0.name)=\($0.value)" }
            .joined(separator: "&")
    }

    /// A key as Alipay's console gives it: PEM, or the bare Base64 body of one.
    static func pem(_ text: String, kind: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN") { return trimmed }
        return "-----BEGIN \(kind)-----\n\(trimmed)\n-----END \(kind)-----"
    }

    /// Alipay's times: `yyyy-MM-dd HH:mm:ss`, China time (UTC+8).
    public static func timeFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "Asia/Shanghai")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter
    }

    /// Parses an `application/x-www-form-urlencoded` text (or query) into decoded pairs, in order.
    public static func formPairs(_ text: String) -> [(name: String, value: String)]? {
        var pairs: [(name: String, value: String)] = []
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(Substring(pieces[0])), let value = decode(pieces.count > 1 ? Substring(pieces[1]) : "") else { return nil }
            pairs.append((name, value))
        }
        return pairs
    }

    static func decode(_ text: Substring) -> String? {
        PercentDecoding.decode(Substring(text.replacingOccurrences(of: "+", with: " ")))
    }

    /// Verifies a signed notice (or response) with Alipay's public key.
    public struct Verifier: @unchecked Sendable {
        let key: _RSA.Signing.PublicKey

        /// - Throws: `CredentialError.misconfigured` if the key is not an RSA public key of 2048 bits or more.
        public init(publicKey text: String) throws(CredentialError) {
            do { key = try _RSA.Signing.PublicKey(pemRepresentation: AlipayRSA2.pem(text, kind: "PUBLIC KEY")) } catch {
                throw .misconfigured("the Alipay public key is not a PEM RSA public key (2048 bits or more)")
            }
        }

        /// True when `parameters` carry a valid `sign` (notices exclude `sign` and `sign_type`).
        public func verify(_ parameters: [(name: String, value: String)]) -> Bool {
            let signs = parameters.filter { $0.name == "sign" }
            guard signs.count == 1, let raw = Data(base64Encoded: signs[0].value) else { return false }
            let names = parameters.map(\.name)
            guard Set(names).count == names.count else { return false }   // a repeated parameter is never trusted
            let content = AlipayRSA2.content(parameters, excluding: ["sign", "sign_type"])
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw), for: Data(content.utf8),
                                        padding: .insecurePKCS1v1_5)
        }
    }

    /// Signs requests with the app's private key.
    struct Signer: @unchecked Sendable {
        let appID: String
        let key: _RSA.Signing.PrivateKey

        init(appID: String, privateKey text: String) throws(CredentialError) {
            self.appID = appID
            do {
                key = try _RSA.Signing.PrivateKey(pemRepresentation: AlipayRSA2.pem(text, kind: "PRIVATE KEY"))
            } catch {
                throw .misconfigured("credential type alipay_rsa2: private_key is not a PEM RSA private key (2048 bits or more)")
            }
        }

        /// Adds the common parameters to the query and then `sign` over the query and form body.
        func sign(_ request: inout OutboundRequest, now: Date) throws(CredentialError) {
            let formatter = AlipayRSA2.timeFormatter()
            for (name, value) in [("app_id", appID), ("charset", "utf-8"), ("format", "JSON"), ("sign_type", "RSA2"),
                                  ("timestamp", formatter.string(from: now)), ("version", "1.0")] {
                request.appendQueryParameter(name, value)
            }
            guard var parameters = AlipayRSA2.formPairs(request.query) else {
                throw .misconfigured("credential type alipay_rsa2: the query cannot be decoded")
            }
            if request.bodyFormat == .form, !request.body.isEmpty {
                guard let form = AlipayRSA2.formPairs(String(decoding: request.body, as: UTF8.self)) else {
                    throw .misconfigured("credential type alipay_rsa2: the form body cannot be decoded")
                }
                parameters += form
            }
            let content = AlipayRSA2.content(parameters, excluding: ["sign"])
            do {
                let signature = try key.signature(for: Data(content.utf8), padding: .insecurePKCS1v1_5)
                request.appendQueryParameter("sign", signature.rawRepresentation.base64EncodedString())
            } catch {
                throw .misconfigured("credential type alipay_rsa2: signing failed")
            }
        }
    }
}
