@preconcurrency import Crypto
import BrokerCore
import Foundation

/// A signed statement of a log stream's state: its size and head hash at a time.
///
/// Whoever keeps a copy (exported with `GET /v1/log/checkpoints`) can later prove
/// that the log still extends what was signed: no record at or before `size` was
/// changed, removed or reordered, and the log was not truncated or rolled back.
public struct Checkpoint: Sendable, Hashable, Codable {
    public var stream: String
    /// Records in the stream when signed (the head is record `size`).
    public var size: Int64
    /// Hex SHA-256 of record `size`.
    public var head: String
    public var timeUs: Int64
    /// Base64 Ed25519 signature over `message`.
    public var signature: String
    /// Hex of the first 8 bytes of SHA-256 of the public key.
    public var keyID: String

    public init(stream: String, size: Int64, head: String, timeUs: Int64, signature: String, keyID: String) {
        self.stream = stream; self.size = size; self.head = head; self.timeUs = timeUs; self.signature = signature
        self.keyID = keyID
    }

    enum CodingKeys: String, CodingKey {
        case stream, size, head, signature
        case timeUs = "time_us"
        case keyID = "key_id"
    }

    /// The signed bytes: `{"head":…,"size":…,"stream":…,"time_us":…}` (sorted keys, no spaces).
    public static func message(stream: String, size: Int64, head: String, timeUs: Int64) -> [UInt8] {
        Array(("{\"head\":" + JSONText.quoted(head) + ",\"size\":" + String(size) + ",\"stream\":" + JSONText.quoted(stream)
            + ",\"time_us\":" + String(timeUs) + "}").utf8)
    }

    public var message: [UInt8] { Self.message(stream: stream, size: size, head: head, timeUs: timeUs) }

    /// True when `signature` is `publicKey`'s over `message`.
    public func isSigned(by publicKey: Curve25519.Signing.PublicKey) -> Bool {
        guard let raw = Data(base64Encoded: signature) else { return false }
        return publicKey.isValidSignature(raw, for: Data(message))
    }
}

/// Signs checkpoints with the log's Ed25519 key (`log.signing_key`).
public struct CheckpointSigner: @unchecked Sendable {
    let key: Curve25519.Signing.PrivateKey

    /// `secret` is the key file's text: 64 hex digits are the raw 32-byte key; anything
    /// else is hashed (SHA-256) into one.
    public init(secret: [UInt8]) {
        let text = String(decoding: secret, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        var seed = Array(SHA256.hash(data: secret))
        if text.utf8.count == 64, let bytes = Hex.decode(text) { seed = bytes }
        key = try! Curve25519.Signing.PrivateKey(rawRepresentation: seed)   // any 32 bytes are a valid Ed25519 seed
    }

    public var publicKey: Curve25519.Signing.PublicKey { key.publicKey }
    /// The public key, hex.
    public var publicKeyHex: String { Hex.encode(Array(key.publicKey.rawRepresentation)) }
    public var keyID: String { Self.keyID(of: key.publicKey) }

    public static func keyID(of publicKey: Curve25519.Signing.PublicKey) -> String {
        Hex.encode(Array(SHA256.hash(data: publicKey.rawRepresentation)).prefix(8))
    }

    public func sign(stream: String, size: Int64, head: String, timeUs: Int64) -> Checkpoint {
        let message = Checkpoint.message(stream: stream, size: size, head: head, timeUs: timeUs)
        let signature = (try? key.signature(for: Data(message))) ?? Data()
        return Checkpoint(stream: stream, size: size, head: head, timeUs: timeUs,
                          signature: signature.base64EncodedString(), keyID: keyID)
    }
}
