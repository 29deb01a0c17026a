@preconcurrency import Crypto
import BrokerCore
import Foundation

/// The exported form of a log's checkpoints (`GET /v1/log/checkpoints`, `sharebroker log checkpoints`),
/// which `sharebroker log verify --checkpoints FILE` checks a database against.
public struct CheckpointDocument: Sendable, Codable {
    public var algorithm = "Ed25519"
    /// Hex of the raw 32-byte public key.
    public var publicKey: String?
    public var keyID: String?
    public var checkpoints: [Checkpoint]
    /// On several nodes: each node's checkpoint key, as it registered it (`nil` on one node).
    public var nodes: [NodeKey]?

    public init(publicKey: Curve25519.Signing.PublicKey?, checkpoints: [Checkpoint], nodes: [NodeKey] = []) {
        self.publicKey = publicKey.map { Hex.encode(Array($0.rawRepresentation)) }
        self.keyID = publicKey.map(CheckpointSigner.keyID(of:))
        self.checkpoints = checkpoints
        self.nodes = nodes.isEmpty ? nil : nodes
    }

    enum CodingKeys: String, CodingKey {
        case algorithm, checkpoints, nodes
        case publicKey = "public_key"
        case keyID = "key_id"
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }

    /// A raw Ed25519 public key from 64 hex digits.
    public static func publicKey(hex: String) -> Curve25519.Signing.PublicKey? {
        Hex.decode(hex.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { try? Curve25519.Signing.PublicKey(rawRepresentation: $0) }
    }
}

/// The outcome of verifying the whole log, as the API reports it.
public struct LogVerification: Sendable, Hashable {
    public var records: Int64
    public var streams: Int64
    public var checkpoints: Int
    /// `stream#seq: reason` of the first bad record, or `nil` when intact.
    public var firstBad: String?
    public var recordsPerSecond: Double

    public init(records: Int64, streams: Int64, checkpoints: Int, firstBad: String?, recordsPerSecond: Double) {
        self.records = records; self.streams = streams; self.checkpoints = checkpoints; self.firstBad = firstBad
        self.recordsPerSecond = recordsPerSecond
    }
}

/// Reading the log's proofs: its signed checkpoints and a full verification.
public protocol LogAudit: Sendable {
    func checkpoints() async throws(LogUnavailable) -> [Checkpoint]
    func verifyLog(publicKey: Curve25519.Signing.PublicKey?) async throws(LogUnavailable) -> LogVerification
    /// Each node's checkpoint key, where several nodes write one log (empty for a single node,
    /// whose key is the configured one).
    func nodeKeys() async throws(LogUnavailable) -> [NodeKey]
}

extension LogAudit {
    public func nodeKeys() async throws(LogUnavailable) -> [NodeKey] { [] }
}

/// A node's checkpoint key: the stream it signs, the key id and the raw Ed25519 public key (hex).
public struct NodeKey: Sendable, Hashable, Codable {
    public var stream: String
    public var keyID: String
    public var publicKey: String

    public init(stream: String, keyID: String, publicKey: String) {
        self.stream = stream; self.keyID = keyID; self.publicKey = publicKey
    }

    enum CodingKeys: String, CodingKey {
        case stream
        case keyID = "key_id"
        case publicKey = "public_key"
    }
}
