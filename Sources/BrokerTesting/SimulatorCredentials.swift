@preconcurrency import Crypto
/// The provider secrets the simulators accept, one set per test or sandbox run.
///
/// The broker receives the same values through `environment` (the variable names
/// the adapters in `adapters/` read), so a test proves the broker injects the
/// credential: a caller never holds these. `random()` makes fresh values shaped
/// like the real ones (Huawei's numeric client id, Tencent's `AKID…` secret id,
/// WeChat's `wx…` app id).
public struct SimulatorCredentials: Sendable, Equatable {
    public var huaweiClientID: String
    public var huaweiClientSecret: String
    public var oppoAppKey: String
    public var oppoMasterSecret: String
    public var amapKey: String
    public var tencentSecretID: String
    public var tencentSecretKey: String
    public var wechatAppID: String
    public var wechatAppSecret: String
    public var alipayAppID: String
    /// RSA keys (made once per process): the app's private key for the broker, Alipay's public key for notices.
    public var alipayKeys: AlipayKeys = .shared
    /// Google Maps Platform API key (`AIza` and 35 characters, as Google's and as the googlemaps SDK checks).
    public var googleMapsKey = "AIza" + RandomText.alphanumeric(35)
    /// Xiaomi MiPush app secret (`Authorization: key=<secret>`).
    public var xiaomiAppSecret = RandomText.alphanumeric(24)
    /// Tencent Location Service key (`XXXXX-XXXXX-…`) and its SN-check secret key.
    public var tencentLBSKey = (0..<6).map { _ in RandomText.alphanumeric(5).uppercased() }.joined(separator: "-")
    public var tencentLBSSecretKey = RandomText.alphanumeric(32)
    /// vivo push app id, app key and app secret (the auth call signs md5(appId + appKey + timestamp + appSecret)).
    public var vivoAppID = String(UInt32.random(in: 10_000...99_999))
    public var vivoAppKey = RandomText.hex(bytes: 16)
    public var vivoAppSecret = RandomText.hex(bytes: 16)
    /// The Firebase project (fixed, so the sandbox's is known) and its service account (the key is `ServiceAccountKey`).
    public var fcmProjectID = "sharebroker-sandbox"
    /// Alibaba Cloud AccessKey (`LTAI…`) and its secret.
    public var alibabaAccessKeyID = "LTAI5t" + RandomText.alphanumeric(18)
    public var alibabaAccessKeySecret = RandomText.alphanumeric(30)
    /// Sign in with Apple: the team, the key and its P-256 private key, the app's client id.
    public var appleTeamID = RandomText.alphanumeric(10).uppercased()
    public var appleKeyID = RandomText.alphanumeric(10).uppercased()
    public var appleClientID = "com.example.sharebroker"
    public var applePrivateKeyPEM = P256.Signing.PrivateKey().pemRepresentation
    /// APNs token-based authentication: the team, the key (a `.p8`, P-256) and the app's bundle id (the topic).
    public var apnsTeamID = RandomText.alphanumeric(10).uppercased()
    public var apnsKeyID = RandomText.alphanumeric(10).uppercased()
    public var apnsTopic = "com.example.sharebroker"
    public var apnsPrivateKeyPEM = P256.Signing.PrivateKey().pemRepresentation
    /// Google OAuth client.
    public var googleClientID = String(UInt64.random(in: 100_000_000_000...999_999_999_999)) + "-" + RandomText.alphanumeric(32).lowercased() + ".apps.googleusercontent.com"
    public var googleClientSecret = "GOCSPX-" + RandomText.alphanumeric(28)
    public var fcmClientEmail: String { "sharebroker@\(fcmProjectID).iam.gserviceaccount.com" }

    public init(
        huaweiClientID: String, huaweiClientSecret: String,
        oppoAppKey: String, oppoMasterSecret: String,
        amapKey: String,
        tencentSecretID: String, tencentSecretKey: String,
        wechatAppID: String, wechatAppSecret: String, alipayAppID: String = "2021000000000000"
    ) {
        self.alipayAppID = alipayAppID
        self.huaweiClientID = huaweiClientID
        self.huaweiClientSecret = huaweiClientSecret
        self.oppoAppKey = oppoAppKey
        self.oppoMasterSecret = oppoMasterSecret
        self.amapKey = amapKey
        self.tencentSecretID = tencentSecretID
        self.tencentSecretKey = tencentSecretKey
        self.wechatAppID = wechatAppID
        self.wechatAppSecret = wechatAppSecret
    }

    /// Fresh random credentials.
    public static func random() -> SimulatorCredentials {
        SimulatorCredentials(
            huaweiClientID: String(UInt64.random(in: 100_000_000...999_999_999)),
            huaweiClientSecret: RandomText.hex(bytes: 32),
            oppoAppKey: RandomText.hex(bytes: 16),
            oppoMasterSecret: RandomText.hex(bytes: 16),
            amapKey: RandomText.hex(bytes: 16),
            tencentSecretID: "AKID" + RandomText.alphanumeric(32),
            tencentSecretKey: RandomText.alphanumeric(32),
            wechatAppID: "wx" + RandomText.hex(bytes: 8),
            wechatAppSecret: RandomText.hex(bytes: 16),
            alipayAppID: "2021" + String(UInt64.random(in: 100_000_000_000...999_999_999_999))
        )
    }

    /// Environment variable name → value, as the adapters' `{ env: NAME }` read them.
    public var environment: [String: String] {
        [
            "HUAWEI_CLIENT_ID": self.huaweiClientID,
            "HUAWEI_CLIENT_SECRET": self.huaweiClientSecret,
            "OPPO_APP_KEY": self.oppoAppKey,
            "OPPO_MASTER_SECRET": self.oppoMasterSecret,
            "AMAP_KEY": self.amapKey,
            "TENCENT_SECRET_ID": self.tencentSecretID,
            "TENCENT_SECRET_KEY": self.tencentSecretKey,
            "WECHAT_APP_ID": self.wechatAppID,
            "WECHAT_APP_SECRET": self.wechatAppSecret,
            "ALIPAY_APP_ID": self.alipayAppID,
            "ALIPAY_APP_PRIVATE_KEY": self.alipayKeys.appPrivateKeyPEM,
            "ALIPAY_PUBLIC_KEY": self.alipayKeys.alipayPublicKeyPEM,
            "GOOGLE_MAPS_KEY": self.googleMapsKey,
            "XIAOMI_APP_SECRET": self.xiaomiAppSecret,
            "TENCENT_LBS_KEY": self.tencentLBSKey, "TENCENT_LBS_SECRET_KEY": self.tencentLBSSecretKey,
            "VIVO_APP_ID": self.vivoAppID, "VIVO_APP_KEY": self.vivoAppKey, "VIVO_APP_SECRET": self.vivoAppSecret,
            "FCM_CLIENT_EMAIL": self.fcmClientEmail, "FCM_PRIVATE_KEY": ServiceAccountKey.privateKeyPEM,
            "ALIBABA_ACCESS_KEY_ID": self.alibabaAccessKeyID, "ALIBABA_ACCESS_KEY_SECRET": self.alibabaAccessKeySecret,
            "APPLE_TEAM_ID": self.appleTeamID, "APPLE_KEY_ID": self.appleKeyID, "APPLE_CLIENT_ID": self.appleClientID,
            "APPLE_PRIVATE_KEY": self.applePrivateKeyPEM,
            "GOOGLE_CLIENT_ID": self.googleClientID, "GOOGLE_CLIENT_SECRET": self.googleClientSecret,
            "APNS_TEAM_ID": self.apnsTeamID, "APNS_KEY_ID": self.apnsKeyID, "APNS_PRIVATE_KEY": self.apnsPrivateKeyPEM,
        ]
    }
}
