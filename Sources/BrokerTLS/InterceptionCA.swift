@preconcurrency import Crypto
import Foundation
import SwiftASN1
import X509

/// What went wrong setting up TLS interception (never a key's bytes).
public struct TLSSetupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The broker's own certificate authority for TLS interception: an ECDSA P-256 key and a
/// self-signed CA certificate, and the leaf certificates it issues for adapter hosts.
///
/// Clients trust this CA (and only they do: it is the broker's, not a public one), so the
/// broker can terminate TLS for exactly the hosts its adapters claim. The CA is limited to
/// issuing end-entity certificates (`pathLenConstraint` 0), and a CA the broker makes carries
/// critical X.509 `nameConstraints` permitting only the adapters' hosts (and no IP address): a
/// client that trusts it, even system-wide, accepts nothing it signs for any other name, so a
/// stolen CA key cannot impersonate other sites to those clients.
public struct InterceptionCA: Sendable {
    public let certificate: Certificate
    let key: P256.Signing.PrivateKey

    /// The CA certificate, PEM: what clients put in their trust store.
    public var certificatePEM: String {
        get throws(TLSSetupError) {
            do { return try certificate.serializeAsPEM().pemString } catch {
                throw TLSSetupError("the CA certificate does not serialise: \(error)")
            }
        }
    }

    /// The CA's private key, PEM (PKCS#8): written once, mode 0600.
    public var keyPEM: String { key.pemRepresentation }

    /// A new CA, valid for ten years from `now` (backdated an hour for clock skew), permitted to
    /// name only `permittedHosts` (and their subdomains, RFC 5280 §4.2.1.10) and no IP address;
    /// without hosts, unconstrained (tests only: the broker always passes its adapters' hosts).
    public static func generate(now: Date = Date(), permittedHosts: [String] = []) throws(TLSSetupError) -> InterceptionCA {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let name = try DistinguishedName {
                OrganizationName("ShareBroker")
                CommonName("ShareBroker interception CA \(Self.shortID(key.publicKey))")
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                    if !permittedHosts.isEmpty {
                        Critical(NameConstraints(permittedDNSDomains: Set(permittedHosts.map { $0.lowercased() }).sorted(),
                                                 excludedIPRanges: [ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 8)),
                                                                    ASN1OctetString(contentBytes: ArraySlice(repeating: 0, count: 32))]))
                    }
                },
                issuerPrivateKey: Certificate.PrivateKey(key))
            return InterceptionCA(certificate: certificate, key: key)
        } catch {
            throw TLSSetupError("could not create the interception CA: \(error)")
        }
    }

    /// A CA given as PEM texts: the key must be an ECDSA P-256 key whose public half is the
    /// certificate's, and the certificate a CA's.
    public init(certificatePEM: String, keyPEM: String) throws(TLSSetupError) {
        let certificate: Certificate
        do { certificate = try Certificate(pemEncoded: certificatePEM) } catch {
            throw TLSSetupError("the CA certificate is not a PEM X.509 certificate (\(error))")
        }
        let key: P256.Signing.PrivateKey
        do { key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM) } catch {
            throw TLSSetupError("the CA key is not a PEM ECDSA P-256 private key")
        }
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw TLSSetupError("the CA key does not belong to the CA certificate")
        }
        guard case .isCertificateAuthority? = try? certificate.extensions.basicConstraints else {
            throw TLSSetupError("the CA certificate is not a CA (basicConstraints cA is not set)")
        }
        self.init(certificate: certificate, key: key)
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A leaf certificate for exactly `host` (its only subject alternative name), for TLS
    /// servers, valid from five minutes before `now` for `validity`, with its own new key.
    public func issueLeaf(for host: String, now: Date, validity: TimeInterval) throws(TLSSetupError)
        -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        do {
            let subject = try DistinguishedName { CommonName(host) }
            let caKeyID = (try certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
                ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-300),
                notValidAfter: min(now.addingTimeInterval(validity), certificate.notValidAfter),
                issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([.dnsName(host)])
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: caKeyID)
                },
                issuerPrivateKey: Certificate.PrivateKey(self.key))
            return (leaf, key)
        } catch {
            throw TLSSetupError("could not issue a certificate for \(host): \(error)")
        }
    }

    /// The DNS names the CA's `nameConstraints` permit, or nil when it has none (unconstrained).
    public var permittedHosts: [String]? {
        guard let constraints = try? certificate.extensions.nameConstraints else { return nil }
        return constraints.permittedSubtrees.compactMap { name in
            if case .dnsName(let host) = name { return host.lowercased() }
            return nil
        }
    }

    /// True when a leaf for `host` would be within the CA's name constraints (always, without any).
    public func permits(_ host: String) -> Bool {
        guard let permitted = permittedHosts else { return true }
        let host = host.lowercased()
        return permitted.contains { constraint in
            constraint.hasPrefix(".") ? host.hasSuffix(constraint) : (host == constraint || host.hasSuffix("." + constraint))
        }
    }

    /// The first 8 hex digits of the key's SHA-256: tells one broker's CA from another's in a trust store.
    static func shortID(_ key: P256.Signing.PublicKey) -> String {
        let digest = SHA256.hash(data: key.x963Representation)
        return digest.prefix(4).map { String(format: "%02x", $0) }.joined()
    }
}
