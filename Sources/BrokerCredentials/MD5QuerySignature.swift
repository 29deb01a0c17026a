import BrokerCore
import BrokerFields
@preconcurrency import Crypto
import Foundation

/// `md5_query_sig`: a key in the query and a signature parameter over the whole query (the
/// adapter names the parameter): lower-case hex MD5 of the request
/// path, `?`, every query parameter sorted by name as `name=value` joined by `&` with the raw
/// (decoded) values, then the secret key. The path is the one sent (with or without a trailing
/// `/`, as the request has it). Checked against a provider's published worked example in
/// `MD5QuerySignatureTests`.
struct MD5QuerySignature: Sendable {
    /// Parameters the broker adds first (the key), by name.
    let parameters: [ExactKey: String]
    let secretKey: String
    let signatureParameter: String

    /// Adds the signature; the key (`parameters`) is already in the query.
    func sign(_ request: inout OutboundRequest) throws(CredentialError) {
        guard let pairs = RSAParameterSignature.formPairs(request.query) else {
            throw .misconfigured("credential type md5_query_sig: the query cannot be decoded")
        }
        request.appendQueryParameter(signatureParameter, Self.signature(path: request.path, pairs: pairs, secretKey: secretKey))
    }

    static func signature(path: String, pairs: [(name: String, value: String)], secretKey: String) -> String {
        let sorted = pairs.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(\.element)
        let text = path + "?" + sorted.map { $0.name + "=" + $0.value }.joined(separator: "&") + secretKey
        return Hex.encode(Insecure.MD5.hash(data: Array(text.utf8)))
    }
}
