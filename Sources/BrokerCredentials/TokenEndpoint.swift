import BrokerCore
import BrokerCurl

/// A provider's token URL and the client that reaches it.
///
/// Failures become `credential_unavailable` errors naming the host and the HTTP
/// status or transport error code, never the request or response body.
struct TokenEndpoint: Sendable {
    let url: String
    let host: String
    let client: any UpstreamClient
    let credentialType: String

    init(url: String, client: any UpstreamClient, credentialType: String) throws(CredentialError) {
        guard let parsed = UpstreamURL(url) else {
            throw .misconfigured("credential type \(credentialType): token_url is not an http(s) URL")
        }
        self.url = url
        self.host = parsed.host
        self.client = client
        self.credentialType = credentialType
    }

    /// POSTs `body` and returns the JSON object of a 2xx answer.
    func post(contentType: String, body: [UInt8]) async -> Result<[String: Any], CredentialError> {
        let request = UpstreamRequest(method: "POST", url: url,
                                      headers: [HTTPHeaderLine("Content-Type", contentType),
                                                HTTPHeaderLine("Accept", "application/json")],
                                      body: body)
        let response: UpstreamResponse
        do {
            response = try await client.send(request)
        } catch let error as UpstreamError {
            return .failure(.unavailable("credential type \(credentialType): token request to \(host) failed: \(error.code.rawValue)"))
        } catch {
            return .failure(.unavailable("credential type \(credentialType): token request to \(host) failed (\(type(of: error)))"))
        }
        guard (200..<300).contains(response.status) else {
            return .failure(.unavailable("credential type \(credentialType): token endpoint \(host) answered HTTP \(response.status)"))
        }
        guard let object = TokenResponse.object(response.body) else {
            return .failure(.unavailable("credential type \(credentialType): token endpoint \(host) did not answer a JSON object"))
        }
        return .success(object)
    }
}
