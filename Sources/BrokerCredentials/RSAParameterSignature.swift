import BrokerCore
@preconcurrency import _CryptoExtras
import Crypto
import Foundation

/// Signing of a request's parameters: SHA256withRSA (PKCS #1 v1.5) over every non-empty
/// parameter (query and form) except the signature itself and any listed as unsigned,
/// sorted by name and joined as `k=v&k=v` with raw (decoded) values, in Base64.
/// Which parameters, names and time format a provider uses is the adapter's to say.
public enum RSAParameterSignature {
    /// The text that is signed.
    public static func content(_ parameters: [(name: String, value: String)], excluding: Set<String>) -> String {
        parameters.filter { !$0.value.isEmpty && !excluding.contains($0.name) }
            .sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
            .map { "\($0.name)=\($0.value)" }
            .joined(separator: "&")
    }

    /// A key as PEM, or the bare Base64 body of one (as some provider consoles give it).
    static func pem(_ text: String, kind: String) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("-----BEGIN") { return trimmed }
        return "-----BEGIN \(kind)-----\n\(trimmed)\n-----END \(kind)-----"
    }

    /// A formatter for a provider's local time text (`yyyy-MM-dd HH:mm:ss` in a named zone).
    public static func timeFormatter(format: String, timeZone: String) -> DateFormatter? {
        guard let zone = TimeZone(identifier: timeZone) else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = format
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

    /// Verifies a provider's signed form (a notice) with its public key.
    public struct Verifier: @unchecked Sendable {
        let key: _RSA.Signing.PublicKey
        let signatureParameter: String
        let unsigned: Set<String>

        /// - Throws: `CredentialError.misconfigured` if the key is not an RSA public key of 2048 bits or more.
        public init(publicKey text: String, signatureParameter: String, unsigned: Set<String>) throws(CredentialError) {
            do { key = try _RSA.Signing.PublicKey(pemRepresentation: RSAParameterSignature.pem(text, kind: "PUBLIC KEY")) } catch {
                throw .misconfigured("the provider's public key is not a PEM RSA public key (2048 bits or more)")
            }
            self.signatureParameter = signatureParameter
            self.unsigned = unsigned
        }

        /// True when `parameters` carry one valid signature; a repeated parameter is never trusted.
        public func verify(_ parameters: [(name: String, value: String)]) -> Bool {
            let signs = parameters.filter { $0.name == signatureParameter }
            guard signs.count == 1, let raw = Data(base64Encoded: signs[0].value) else { return false }
            let names = parameters.map(\.name)
            guard Set(names).count == names.count else { return false }
            let content = RSAParameterSignature.content(parameters, excluding: unsigned.union([signatureParameter]))
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw), for: Data(content.utf8),
                                        padding: .insecurePKCS1v1_5)
        }
    }

    /// Signs requests with the caller-side private key (credential type `rsa_sha256_params`).
    struct Signer: @unchecked Sendable {
        /// Added to the query before signing, in name order.
        let parameters: [(name: String, value: String)]
        /// A parameter carrying the current time, and its text form.
        let timestamp: (name: String, formatter: @Sendable () -> DateFormatter)?
        let signatureParameter: String
        let key: _RSA.Signing.PrivateKey

        init(parameters: [(name: String, value: String)], timestamp: (name: String, format: String, timeZone: String)?,
             signatureParameter: String, privateKey text: String) throws(CredentialError) {
            self.parameters = parameters.sorted { $0.name < $1.name }
            if let timestamp {
                guard RSAParameterSignature.timeFormatter(format: timestamp.format, timeZone: timestamp.timeZone) != nil else {
                    throw .misconfigured("credential type rsa_sha256_params: unknown time_zone '\(timestamp.timeZone)'")
                }
                let (format, zone) = (timestamp.format, timestamp.timeZone)
                self.timestamp = (timestamp.name, { RSAParameterSignature.timeFormatter(format: format, timeZone: zone)! })
            } else {
                self.timestamp = nil
            }
            self.signatureParameter = signatureParameter
            do {
                key = try _RSA.Signing.PrivateKey(pemRepresentation: RSAParameterSignature.pem(text, kind: "PRIVATE KEY"))
            } catch {
                throw .misconfigured("credential type rsa_sha256_params: private_key is not a PEM RSA private key (2048 bits or more)")
            }
        }

        /// Adds the configured parameters to the query, then the signature over the query and form body.
        func sign(_ request: inout OutboundRequest, now: Date) throws(CredentialError) {
            var added = parameters
            if let timestamp { added.append((timestamp.name, timestamp.formatter().string(from: now))) }
            for (name, value) in added.sorted(by: { $0.name < $1.name }) { request.appendQueryParameter(name, value) }
            guard var all = RSAParameterSignature.formPairs(request.query) else {
                throw .misconfigured("credential type rsa_sha256_params: the query cannot be decoded")
            }
            if request.bodyFormat == .form, !request.body.isEmpty {
                guard let form = RSAParameterSignature.formPairs(String(decoding: request.body, as: UTF8.self)) else {
                    throw .misconfigured("credential type rsa_sha256_params: the form body cannot be decoded")
                }
                all += form
            }
            let content = RSAParameterSignature.content(all, excluding: [signatureParameter])
            do {
                let signature = try key.signature(for: Data(content.utf8), padding: .insecurePKCS1v1_5)
                request.appendQueryParameter(signatureParameter, signature.rawRepresentation.base64EncodedString())
            } catch {
                throw .misconfigured("credential type rsa_sha256_params: signing failed")
            }
        }
    }
}
