import Foundation
import Logging

/// The provider simulators, one per adapter in `adapters/`, started together, each on its own loopback port.
///
/// Used by the broker's integration tests, `sharebroker serve --sandbox` and
/// `sharebroker simulate`: point each adapter's `upstream` (and `token_url`, keeping
/// its path) at `simulator(provider).baseURL`, and give the broker
/// `credentials.environment`. Always call `shutdown()`; it stops every server and
/// waits for it.
public final class ProviderSimulators: Sendable {
    /// Provider names served, in a fixed order.
    public static let providers = ["huawei-push", "oppo-push", "xiaomi-push", "vivo-push", "fcm", "apns", "amap-location", "google-maps",
                                   "tencent-lbs", "tencent-faceid", "alibaba-cloudauth", "wechat-login", "alipay-login",
                                   "apple-login", "google-login"]

    /// The secrets the simulators accept.
    public let credentials: SimulatorCredentials
    /// Every simulator, in `providers` order.
    public let all: [ProviderSimulator]

    private init(credentials: SimulatorCredentials, all: [ProviderSimulator]) {
        self.credentials = credentials
        self.all = all
    }

    /// Starts every simulator on 127.0.0.1 (ephemeral ports).
    /// - Parameters:
    ///   - tokenLifetime: lifetime of Huawei access tokens (`expires_in`); a short one
    ///     lets a test see expiry (`80200003`).
    ///   - oppoTokenLifetime: lifetime of OPPO auth tokens (OPPO's are 24 h; its auth
    ///     response carries no lifetime, the adapter declares it).
    ///   - now: the clock the simulators judge expiry and timestamps by.
    public static func start(
        credentials: SimulatorCredentials,
        tokenLifetime: Duration = .seconds(3600),
        oppoTokenLifetime: Duration = .seconds(86_400),
        now: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) async throws -> ProviderSimulators {
        let behaviors: [any ProviderBehavior] = [
            HuaweiPushBehavior(clientID: credentials.huaweiClientID, clientSecret: credentials.huaweiClientSecret,
                               tokenLifetime: tokenLifetime, now: now),
            OPPOPushBehavior(appKey: credentials.oppoAppKey, masterSecret: credentials.oppoMasterSecret,
                             tokenLifetime: oppoTokenLifetime, now: now),
            XiaomiPushBehavior(appSecret: credentials.xiaomiAppSecret),
            VivoPushBehavior(appID: credentials.vivoAppID, appKey: credentials.vivoAppKey, appSecret: credentials.vivoAppSecret,
                             now: now),
            FCMBehavior(projectID: credentials.fcmProjectID, clientEmail: credentials.fcmClientEmail, now: now),
            APNsBehavior(teamID: credentials.apnsTeamID, keyID: credentials.apnsKeyID, topic: credentials.apnsTopic,
                         privateKeyPEM: credentials.apnsPrivateKeyPEM, now: now),
            AMapBehavior(key: credentials.amapKey),
            GoogleMapsBehavior(key: credentials.googleMapsKey),
            TencentLBSBehavior(key: credentials.tencentLBSKey, secretKey: credentials.tencentLBSSecretKey),
            TencentFaceIDBehavior(secretID: credentials.tencentSecretID, secretKey: credentials.tencentSecretKey, now: now),
            AlibabaCloudAuthBehavior(accessKeyID: credentials.alibabaAccessKeyID, accessKeySecret: credentials.alibabaAccessKeySecret,
                                     now: now),
            WeChatLoginBehavior(appID: credentials.wechatAppID, appSecret: credentials.wechatAppSecret, now: now),
            AlipayLoginBehavior(appID: credentials.alipayAppID, keys: credentials.alipayKeys),
            AppleLoginBehavior(teamID: credentials.appleTeamID, keyID: credentials.appleKeyID, clientID: credentials.appleClientID,
                               privateKeyPEM: credentials.applePrivateKeyPEM, now: now),
            GoogleLoginBehavior(clientID: credentials.googleClientID, clientSecret: credentials.googleClientSecret),
        ]
        var started: [ProviderSimulator] = []
        do {
            for behavior in behaviors {
                started.append(try await ProviderSimulator.start(behavior: behavior, logger: logger))
            }
        } catch {
            for simulator in started { await simulator.shutdown() }
            throw error
        }
        return ProviderSimulators(credentials: credentials, all: started)
    }

    /// The simulator for an adapter's provider name, or nil.
    public subscript(provider: String) -> ProviderSimulator? {
        self.all.first { $0.provider == provider }
    }

    /// The simulator for a provider name; the name must be one of `providers`.
    public func simulator(_ provider: String) -> ProviderSimulator {
        guard let simulator = self[provider] else {
            preconditionFailure("no simulator for provider \(provider); known: \(Self.providers.joined(separator: ", "))")
        }
        return simulator
    }

    /// Provider name → base URL, e.g. for a sandbox banner or adapter overrides.
    public var baseURLs: [String: String] {
        Dictionary(uniqueKeysWithValues: self.all.map { ($0.provider, $0.baseURL) })
    }

    /// Stops every server and waits until all have stopped.
    public func shutdown() async {
        await withTaskGroup(of: Void.self) { group in
            for simulator in self.all {
                group.addTask { await simulator.shutdown() }
            }
        }
    }
}
