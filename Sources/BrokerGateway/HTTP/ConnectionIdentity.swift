import BrokerCore
import Foundation
import BrokerService
import BrokerTLS
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// Who a connection is, apart from any credential header: the client its verified certificate
/// names (`clients[].mtls`, on the TLS listener), or the client whose own listener it came in on
/// (`clients[].listen`, sidecar mode); nobody on the plain listener.
///
/// A credential header still decides when sent (`Proxy-Authorization` for proxy traffic,
/// `Authorization` for the API); the connection's client stands in when none is sent, so a
/// service with a certificate needs no token, and a `CONNECT` from a client that cannot send
/// `Proxy-Authorization` is that client's tunnel.
final class ConnectionIdentity: Sendable {
    private let box: NIOLockedValueBox<Caller?>
    /// The connection came in on the TLS listener.
    let secure: Bool

    init(_ caller: Caller?, secure: Bool = false) {
        box = NIOLockedValueBox(caller)
        self.secure = secure
    }

    var caller: Caller? { box.withLockedValue { $0 } }

    fileprivate func set(_ caller: Caller?) { box.withLockedValue { $0 = caller } }

    /// The identity of the connection whose request this task serves (set around Hummingbird's
    /// request loop for the connection), read by `Authenticator` when no `Authorization` is sent.
    @TaskLocal static var current: ConnectionIdentity?
}

/// The configured clients' certificates: which client a verified client certificate names.
public struct ClientCertificates: Sendable {
    private let entries: [(match: BrokerConfig.Client.CertificateMatch, caller: Caller)]

    public init(_ entries: [(BrokerConfig.Client.CertificateMatch, Caller)] = []) { self.entries = entries.map { ($0.0, $0.1) } }

    func caller(for names: ClientCertificateNames) -> Caller? {
        entries.first { entry in
            switch entry.match {
            case .sha256(let digest): digest == names.sha256
            case .subject(let subject): subject == names.subject
            case .spiffeID(let id): names.spiffeIDs.contains(id)
            }
        }?.caller
    }
}

/// After the TLS handshake: the client certificate the peer presented (already verified against
/// `client_ca` by the handshake) mapped to a configured client. A certificate that names no
/// client leaves the connection anonymous: its requests then need a token, as on the plain listener.
final class ClientCertificateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let identity: ConnectionIdentity
    private let certificates: ClientCertificates
    private let logger: Logger

    init(identity: ConnectionIdentity, certificates: ClientCertificates, logger: Logger) {
        self.identity = identity
        self.certificates = certificates
        self.logger = logger
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event,
           let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
           let der = try? certificate.toDERBytes() {
            let names = ClientCertificateNames(der: der)
            // Checked here as well as in the handshake: a resumed TLS session brings back its certificate
            // without verifying it again, and it may have expired since.
            let current = names.validity?.contains(Date()) ?? false
            let caller = current ? certificates.caller(for: names) : nil
            identity.set(caller)
            if !current {
                logger.notice("client certificate outside its validity: the connection is anonymous",
                              metadata: ["tls.client_sha256": .string(names.sha256)])
            } else if caller == nil {
                // The certificate's SHA-256 only: it identifies the certificate, not a person.
                logger.notice("client certificate names no configured client",
                              metadata: ["tls.client_sha256": .string(names.sha256)])
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
