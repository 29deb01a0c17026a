@preconcurrency import Crypto
import BrokerCore
import Foundation

/// Seals the values of a share's `revocation_key` fields (AES-256-GCM) so that the
/// store keeps them only encrypted.
///
/// A share's keys form a *key set* (its (name, value) pairs), named by a keyed print of its plain
/// text: every share that sends the same push token under the same grant names the same set, so the
/// store keeps one sealed box per grant and set, not one per share. A box is bound to its provider and
/// print (a box moved to another set's row does not open, and an opened box must print to its row's
/// name). Boxes stored per share before key sets existed are bound to their share id and still open.
///
/// The key comes from configuration (`revocation.key`) and is stretched with
/// HKDF-SHA-256, so any secret text of enough entropy serves.
public struct RevocationKeyVault: @unchecked Sendable {
    private let key: SymmetricKey
    private let idempotency: SymmetricKey
    private let printing: KeyedHash

    public init(secret: [UInt8]) {
        let material = SymmetricKey(data: secret)
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: material, info: Array("sharebroker revocation keys v1".utf8),
                                     outputByteCount: 32)
        idempotency = HKDF<SHA256>.deriveKey(inputKeyMaterial: material,
                                             info: Array("sharebroker revocation idempotency v1".utf8), outputByteCount: 32)
        printing = KeyedHash(key: HKDF<SHA256>.deriveKey(inputKeyMaterial: material, info: Array("sharebroker revocation key sets v1".utf8),
                                                         outputByteCount: 32).withUnsafeBytes { Array($0) })
    }

    /// A share's revocation keys as one set: the plain text a box seals and the print that names it.
    public struct KeySet: Sendable, Hashable {
        /// The first 63 bits of an HMAC-SHA-256 of `plain` under the vault's print key: says nothing
        /// about the values without that key, and collides within a grant with odds of 2⁻⁶³ per pair.
        public let print: Int64
        /// What a box of the set seals: the pairs ordered by name, each name's values in the order given.
        public let plain: [UInt8]
    }

    /// The key set of (name, value) pairs.
    public func keySet(_ keys: [(name: String, value: String)]) -> KeySet {
        keySet(plain: Self.plainText(keys))
    }

    /// The key set whose plain text (`plainText`) is `plain`.
    public func keySet(plain: [UInt8]) -> KeySet {
        KeySet(print: print(of: plain), plain: plain)
    }

    private func print(of plain: [UInt8]) -> Int64 {
        let mac = printing.mac { update in plain.withUnsafeBytes { update($0) } }
        // Never 0, which PostgreSQL's batch arrays use for "no set".
        return max(1, mac.withUnsafeBytes { raw in Int64(bitPattern: raw.loadUnaligned(as: UInt64.self).bigEndian) & Int64.max })
    }

    /// `set` sealed for `provider`: nonce ‖ ciphertext ‖ tag, bound to the provider and the set's print.
    public func seal(_ set: KeySet, provider: String) -> [UInt8] {
        seal(set.plain, binding: Self.binding(provider: provider, print: set.print))
    }

    /// The keys of a box stored for `provider` under the key set `print`; throws if the box was altered,
    /// moved to another set or provider, or sealed under another key.
    public func open(_ sealed: [UInt8], keySet print: Int64, provider: String) throws(OpenError) -> [String: [String]] {
        let plain = try open(sealed, binding: Self.binding(provider: provider, print: print))
        guard self.print(of: plain) == print else { throw OpenError() }
        return try Self.keys(plain)
    }

    private static func binding(provider: String, print: Int64) -> [UInt8] {
        var bytes = Array("key-set\u{0}".utf8) + Array(provider.utf8) + [0]
        withUnsafeBytes(of: UInt64(bitPattern: print).bigEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The sealed values of `keys` (name → values), nonce ‖ ciphertext ‖ tag.
    public func seal(_ keys: [String: [String]], shareID: String) -> [UInt8] {
        seal(keys.keys.sorted().flatMap { name in (keys[name] ?? []).map { (name: name, value: $0) } }, shareID: shareID)
    }

    /// The sealed values of `keys`, (name, value) pairs: the same box as the dictionary's, the pairs
    /// ordered by name and each name's values in the order given. A share's path builds the plain
    /// text straight from its pairs: no dictionary, no array per string.
    public func seal(_ keys: [(name: String, value: String)], shareID: String) -> [UInt8] {
        seal(Self.plainText(keys), binding: Array(shareID.utf8))
    }

    /// The plain text of (name, value) pairs: ordered by name, each name's values in the order given,
    /// each string length-prefixed.
    public static func plainText(_ keys: [(name: String, value: String)]) -> [UInt8] {
        var ordered = keys
        if ordered.count > 1 {
            // Stable: a name's values keep their order.
            ordered = keys.indices.sorted { (keys[$0].name, $0) < (keys[$1].name, $1) }.map { keys[$0] }
        }
        var plain: [UInt8] = []
        plain.reserveCapacity(ordered.reduce(0) { $0 + 8 + $1.name.utf8.count + $1.value.utf8.count })
        for (name, value) in ordered {
            append(name, to: &plain)
            append(value, to: &plain)
        }
        return plain
    }

    private func seal(_ plain: [UInt8], binding: [UInt8]) -> [UInt8] {
        // AES-GCM with a random 96-bit nonce (from the pooled CSPRNG bytes) cannot fail for in-memory inputs of this size.
        var nonce = [UInt8](repeating: 0, count: 12)
        nonce.withUnsafeMutableBytes { RandomBytes.fill($0) }
        let box = try! AES.GCM.seal(plain, using: key, nonce: try! AES.GCM.Nonce(data: nonce), authenticating: binding)
        return Array(box.combined!)
    }

    public struct OpenError: Error, Sendable {}

    /// The keys sealed for `shareID` (a box stored per share, before key sets); throws if the box was
    /// altered, moved or sealed under another key.
    public func open(_ sealed: [UInt8], shareID: String) throws(OpenError) -> [String: [String]] {
        try Self.keys(try open(sealed, binding: Array(shareID.utf8)))
    }

    private func open(_ sealed: [UInt8], binding: [UInt8]) throws(OpenError) -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return Array(try AES.GCM.open(box, using: key, authenticating: binding))
        } catch {
            throw OpenError()
        }
    }

    private static func keys(_ plain: [UInt8]) throws(OpenError) -> [String: [String]] {
        var keys: [String: [String]] = [:]
        var index = 0
        while index < plain.count {
            guard let name = read(plain, &index), let value = read(plain, &index) else { throw OpenError() }
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
