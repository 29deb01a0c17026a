/// Why the broker could not add a provider credential to a request.
///
/// `code` is stable and snake_case: `credential_unavailable` when a credential
/// could not be obtained for this request (a token endpoint failed or answered
/// something unusable: the next request tries again), `credential_misconfigured`
/// when an adapter's credentials cannot be used at all (a secret was not
/// resolved, the type is not supported, an operation does not fit the type).
///
/// `message` is for operators. It names the credential type, the parameter or
/// host involved and what went wrong; it never contains a secret, a token, a
/// signature or a response body (which could echo one).
public struct CredentialError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The credential could not be obtained now; retrying later may work.
        public static let unavailable = Code("credential_unavailable")
        /// The adapter's credentials cannot work as configured.
        public static let misconfigured = Code("credential_misconfigured")

        public var description: String { rawValue }
    }

    public var code: Code
    public var message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    static func unavailable(_ message: String) -> CredentialError {
        CredentialError(code: .unavailable, message: message)
    }

    static func misconfigured(_ message: String) -> CredentialError {
        CredentialError(code: .misconfigured, message: message)
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
