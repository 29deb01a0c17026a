@preconcurrency import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

/// The server side of TLS inside `CONNECT` tunnels: one TLS context per adapter host, with a
/// short-lived leaf certificate for exactly that host, issued on first use by the broker's CA,
/// cached, and issued anew once it is within `renewBefore` of its end.
///
/// Each context refuses a handshake whose SNI does not name its host (or names none): a
/// tunnel opened to one host cannot be used to talk TLS as another.
public final class TunnelCertificates: Sendable {
    public let ca: InterceptionCA
    public let validity: TimeInterval
    public let renewBefore: TimeInterval
    let now: @Sendable () -> Date

    struct Leaf {
        let context: NIOSSLContext
        let certificate: Certificate
        let renewAt: Date
    }
    private let leaves = NIOLockedValueBox<[String: Leaf]>([:])

    /// Leaves valid 24 hours, renewed in their last 8.
    public init(ca: InterceptionCA, validity: TimeInterval = 86_400, renewBefore: TimeInterval = 8 * 3600,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.ca = ca
        self.validity = validity
        self.renewBefore = min(renewBefore, validity / 2)
        self.now = now
    }

    /// The TLS server context for `host` (lowercased, no port). A host outside the CA's name
    /// constraints (an adapter added by a reload after the CA was made) gets none: clients would
    /// refuse its leaf, and the broker renews its CA for the new hosts at its next start.
    public func context(for host: String) throws(TLSSetupError) -> NIOSSLContext {
        guard ca.permits(host) else {
            throw TLSSetupError("the interception CA's name constraints do not cover \(host.prefix(253)): restart the broker to renew the CA for the adapters' hosts")
        }
        return try leaf(for: host).context
    }

    /// The leaf certificate currently served for `host`.
    public func certificate(for host: String) throws(TLSSetupError) -> Certificate {
        try leaf(for: host).certificate
    }

    private func leaf(for host: String) throws(TLSSetupError) -> Leaf {
        let now = self.now()
        // Issued under the lock: a burst of first tunnels to a host gets one certificate, not many.
        let result: Result<Leaf, TLSSetupError> = leaves.withLockedValue { leaves in
            if let leaf = leaves[host], leaf.renewAt > now { return .success(leaf) }
            do throws(TLSSetupError) {
                let leaf = try makeLeaf(host: host, now: now)
                leaves[host] = leaf
                return .success(leaf)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func makeLeaf(host: String, now: Date) throws(TLSSetupError) -> Leaf {
        let (certificate, key) = try ca.issueLeaf(for: host, now: now, validity: validity)
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der))],
                privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
            configuration.minimumTLSVersion = .tlsv12
            // HTTP/2 inside the tunnel for a client that offers it (some speak nothing else), else HTTP/1.1.
            configuration.applicationProtocols = ["h2", "http/1.1"]
            configuration.sslContextCallback = { values, promise in
                if values.serverHostname?.lowercased() == host {
                    promise.succeed(.noChanges)
                } else {
                    promise.fail(TLSSetupError("the TLS server name is not the tunnel's host"))
                }
            }
            let context = try NIOSSLContext(configuration: configuration)
            return Leaf(context: context, certificate: certificate,
                        renewAt: certificate.notValidAfter.addingTimeInterval(-renewBefore))
        } catch {
            throw TLSSetupError("could not set up TLS for \(host): \(error)")
        }
    }
}
