@preconcurrency import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOSSL
import X509

/// The TLS of the broker's own listener (`listen_tls`): the server certificate and key from PEM
/// files, TLS 1.2 or later, ALPN `h2` and `http/1.1`, and — when `client_ca` is set — client certificates
/// asked for and, when one is presented, verified against those CAs (a client without one still
/// connects, and authenticates with its token).
///
/// The context is replaced by `reload()` (on SIGHUP and when a file changes): connections already
/// open keep the context they started with, new ones take the new one, and a reload that fails
/// (a half-written file, a key that does not match) keeps the old one.
public final class ListenerTLS: Sendable {
    public let certificatePath: String
    public let keyPath: String
    public let clientCAPath: String?
    private let state: NIOLockedValueBox<(context: NIOSSLContext, stamp: [FileStamp])>

    public init(certificate: String, key: String, clientCA: String?) throws(TLSSetupError) {
        certificatePath = certificate; keyPath = key; clientCAPath = clientCA
        let paths = [certificate, key] + (clientCA.map { [$0] } ?? [])
        let stamps = Self.stamps(paths)
        state = NIOLockedValueBox((try Self.context(certificate: certificate, key: key, clientCA: clientCA), stamps))
    }

    /// The context for a new connection.
    public var context: NIOSSLContext { state.withLockedValue { $0.context } }

    /// Whether client certificates are asked for.
    public var asksForClientCertificates: Bool { clientCAPath != nil }

    /// Loads the files again; the old context stays when they do not make a valid one.
    public func reload() throws(TLSSetupError) {
        // Stamped before the files are read: a file replaced while they are read is seen as changed next time.
        let stamps = Self.stamps(paths)
        do {
            let context = try Self.context(certificate: certificatePath, key: keyPath, clientCA: clientCAPath)
            state.withLockedValue { $0 = (context, stamps) }
        } catch {
            // Tried once for these files: the next change (or SIGHUP) tries again, not every watcher tick.
            state.withLockedValue { $0.stamp = stamps }
            throw error
        }
    }

    /// Whether a file changed (its size, modification time or inode) since the last load.
    public var filesChanged: Bool {
        let now = Self.stamps(paths)
        return state.withLockedValue { $0.stamp != now }
    }

    private var paths: [String] { [certificatePath, keyPath] + (clientCAPath.map { [$0] } ?? []) }

    struct FileStamp: Equatable, Sendable {
        let size: UInt64
        let modified: Date
        let inode: UInt64
    }

    private static func stamps(_ paths: [String]) -> [FileStamp] {
        paths.map { path in
            // A Kubernetes secret volume swaps a symlink: attributes of what the path resolves to.
            let attributes = (try? FileManager.default.attributesOfItem(atPath: (path as NSString).resolvingSymlinksInPath)) ?? [:]
            return FileStamp(size: (attributes[.size] as? NSNumber)?.uint64Value ?? 0,
                             modified: attributes[.modificationDate] as? Date ?? .distantPast,
                             inode: (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0)
        }
    }

    static func context(certificate: String, key: String, clientCA: String?) throws(TLSSetupError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate)
            guard !chain.isEmpty else { throw TLSSetupError("\(certificate) holds no PEM certificate") }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                         privateKey: .privateKey(privateKey))
            configuration.minimumTLSVersion = .tlsv12
            configuration.applicationProtocols = ["h2", "http/1.1"]
            if let clientCA {
                let roots = try NIOSSLCertificate.fromPEMFile(clientCA)
                guard !roots.isEmpty else { throw TLSSetupError("\(clientCA) holds no PEM certificate") }
                configuration.trustRoots = .certificates(roots)
                configuration.certificateVerification = .optionalVerification
                configuration.sendCANameList = true
            }
            return try NIOSSLContext(configuration: configuration)
        } catch let error as TLSSetupError {
            throw error
        } catch {
            throw TLSSetupError("listen_tls: \(error) (certificate \(certificate), key \(key)\(clientCA.map { ", client_ca \($0)" } ?? ""))")
        }
    }
}

/// What a client certificate says about who presented it, for `clients[].mtls`.
public struct ClientCertificateNames: Sendable, Equatable {
    /// The hex SHA-256 of the certificate's DER bytes.
    public var sha256: String
    /// The subject's distinguished name, RFC 4514 (`CN=payments,O=Example`).
    public var subject: String
    /// The `spiffe://` URIs among its subject alternative names.
    public var spiffeIDs: [String]
    /// When the certificate is valid (nil: it could not be read).
    public var validity: ClosedRange<Date>?

    public init(der: [UInt8]) {
        sha256 = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        guard let certificate = try? Certificate(derEncoded: der) else {
            subject = ""; spiffeIDs = []; validity = nil; return
        }
        validity = certificate.notValidBefore <= certificate.notValidAfter ? certificate.notValidBefore...certificate.notValidAfter : nil
        subject = certificate.subject.description
        var uris: [String] = []
        if let names = try? certificate.extensions.subjectAlternativeNames {
            for case .uniformResourceIdentifier(let uri) in names where uri.hasPrefix("spiffe://") { uris.append(uri) }
        }
        spiffeIDs = uris
    }
}
