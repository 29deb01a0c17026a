import BrokerFields
@preconcurrency import Crypto

/// The `sign` of OPPO Push's auth call, `POST /server/v1/auth`: the lowercase hex
/// SHA-256 of `app_key + timestamp + master_secret` (plain concatenation, the
/// timestamp in milliseconds as decimal text). Source: modood/pushapi
/// `oppopush/oppopush.go`.
public enum OPPOAuthSign {
    public static func sign(appKey: String, timestamp: String, masterSecret: String) -> String {
        Hex.encode(SHA256.hash(data: Array((appKey + timestamp + masterSecret).utf8)))
    }
}
