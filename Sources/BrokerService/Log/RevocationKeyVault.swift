@preconcurrency import Crypto
import BrokerCore
import Foundation

/// Seals the values of a share's `revocation_key` fields (AES-256-GCM) so that the
/// store keeps them only encrypted, bound to their share id (a sealed box moved to
/// another share's row does not open).
///
/// The key comes from configuration (`revocation.key`) and is stretched with
/// HKDF-SHA-256, so any secret text of enough entropy serves.
public struct RevocationKeyVault: @unchecked Sendable {
    private let key: SymmetricKey
    private let idempotency: SymmetricKey

    public init(secret: [UInt8]) {
        let material = SymmetricKey(data: secret)
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, info: Array("sharebroker revocation keys v1".utf8),
                                     outputByteCount: 32)
        idempotency = HKDF<SHA256>.deriveKey(inputKeyMaterial: material,
                                             info: Array("sharebroker revocation idempotency v1".utf8), outputByteCount: 32)
    }

    /// The sealed values of `keys` (name → values), nonce ‖ ciphertext ‖ tag.
    public func seal(_ keys: [String: [String]], shareID: String) -> [UInt8] {
        seal(keys.keys.sorted().flatMap { name in (keys[name] ?? []).map { (name: name, value: $0) } }, shareID: shareID)
    }

    /// The sealed values of `keys`, (name, value) pairs: the same box as the dictionary's, the pairs
    /// ordered by name and each name's values in the order given. A share's path builds the plain
    /// text straight from its pairs: no dictionary, no array per string.
    public func seal(_ keys: [(name: String, value: String)], shareID: String) -> [UInt8] {
        var ordered = keys
        if ordered.count > 1 {
            // Stable: a name's values keep their order.
            ordered = keys.indices.sorted { (keys[$0].name, $0) < (keys[$1].name, $1) }.map { keys[$0] }
        }
        var plain: [UInt8] = []
        plain.reserveCapacity(ordered.reduce(0) { $0 + 8 + $1.name.utf8.count + $1.value.utf8.count })
        for (name, value) in ordered {
            Self.append(name, to: &plain)
            Self.append(value, to: &plain)
        }
        // AES-GCM with a random 96-bit nonce (from the pooled CSPRNG bytes) cannot fail for in-memory inputs of this size.
        var nonce = [UInt8](repeating: 0, count: 12)
        nonce.withUnsafeMutableBytes { RandomBytes.fill($0) }
        let box = try! AES.GCM.seal(plain, using: key, nonce: try! AES.GCM.Nonce(data: nonce), authenticating: Array(shareID.utf8))
        return Array(box.combined!)
    }

    public struct OpenError: Error, Sendable {}

    /// The keys sealed for `shareID`; throws if the box was altered, moved or sealed under another key.
    public func open(_ sealed: [UInt8], shareID: String) throws(OpenError) -> [String: [String]] {
        let plain: [UInt8]
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            plain = Array(try AES.GCM.open(box, using: key, authenticating: Array(shareID.utf8)))
        } catch {
            throw OpenError()
        }
        var keys: [String: [String]] = [:]
        var index = 0
        while index < plain.count {
            guard let name = Self.read(plain, &index), let value = Self.read(plain, &index) else { throw OpenError() }
            keys[name, default: []].append(value)
        }
        return keys
    }

    /// A stable idempotency key for one call of one revocation: an HMAC, so it says
    /// nothing about the values in the call.
    public func idempotencyKey(revocationID: String, provider: String, call: RevocationCall) -> String {
        var mac = HMAC<SHA256>(key: idempotency)
        for part in [revocationID, provider, call.method, call.path] {
            mac.update(data: Array(part.utf8))
            mac.update(data: [0])
        }
        mac.update(data: call.body)
        return Hex.encode(Array(mac.finalize()).prefix(16))
    }

    private static func append(_ text: String, to out: inout [UInt8]) {
        let count = UInt32(text.utf8.count)
        out.append(UInt8(count >> 24)); out.append(UInt8((count >> 16) & 0xff))
        out.append(UInt8((count >> 8) & 0xff)); out.append(UInt8(count & 0xff))
        out.append(contentsOf: text.utf8)
    }

    private static func read(_ bytes: [UInt8], _ index: inout Int) -> String? {
        guard index + 4 <= bytes.count else { return nil }
        let count = Int(bytes[index]) << 24 | Int(bytes[index + 1]) << 16 | Int(bytes[index + 2]) << 8 | Int(bytes[index + 3])
        index += 4
        guard index + count <= bytes.count else { return nil }
        defer { index += count }
        return String(decoding: bytes[index..<index + count], as: UTF8.self)
    }
}
