import Crypto

/// SHA-256 of a policy file's bytes, in lowercase hex: the revision logged with each share.
public enum ContentHash {
    public static func sha256Hex(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }
}

