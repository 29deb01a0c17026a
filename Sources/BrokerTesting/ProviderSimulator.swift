import Foundation
import Hummingbird
import HummingbirdHTTP2
import ServiceLifecycle
import Logging

/// One running provider simulator: a real HTTP/1.1 server on `127.0.0.1` that
/// serves one provider's token call and API paths on one port, checks the wire
/// format and the credential the way the provider does, answers in its style,
/// and records what it received.
///
/// The sandbox and the integration tests point an adapter's `upstream` and its
/// `token_url` at `baseURL`, keeping the provider's paths. Recording is
/// thread-safe; `requests()` holds API calls (including unknown paths),
/// `tokenRequests()` the token/auth calls, each in arrival order. Stop it with
/// `ProviderSimulators.shutdown()` (or `shutdown()` for one started alone).
public final class ProviderSimulator: Sendable {
    /// The adapter name this simulator stands in for (`huawei-push`, …).
    public let provider: String
    /// The bound TCP port.
    public let port: Int

    let behavior: any ProviderBehavior
    private let recorder: SimulatorRecorder
    private let server: Task<Void, any Error>
    private let group: ServiceGroup

    /// `http://127.0.0.1:PORT`, no trailing slash.
    public var baseURL: String { "http://127.0.0.1:\(self.port)" }

    private init(behavior: any ProviderBehavior, recorder: SimulatorRecorder, port: Int, server: Task<Void, any Error>,
                 group: ServiceGroup) {
        self.group = group
        self.provider = behavior.provider
        self.behavior = behavior
        self.recorder = recorder
        self.port = port
        self.server = server
    }

    /// API calls received (everything but the token/auth call), in order.
    public func requests() -> [RecordedRequest] {
        self.recorder.state.withLock { $0.requests }
    }

    /// Token/auth calls received, in order.
    public func tokenRequests() -> [RecordedRequest] {
        self.recorder.state.withLock { $0.tokenRequests }
    }

    /// Forgets recorded requests and effects (deletions) and clears the fault.
    /// Issued tokens stay valid and used WeChat codes stay used, so a broker that
    /// cached a token keeps working across a reset.
    public func reset() {
        self.recorder.state.withLock {
            $0.requests = []
            $0.tokenRequests = []
            $0.fault = .none
        }
        self.behavior.resetEffects()
    }

    /// Injects a fault for subsequent API calls (`.none` clears it).
    public func setFault(_ fault: SimulatorFault) {
        self.recorder.state.withLock { $0.fault = fault }
    }

    /// Makes every token this simulator issued expire now (Huawei access tokens,
    /// OPPO auth tokens, WeChat access tokens), without waiting.
    public func expireIssuedTokens() {
        self.behavior.expireIssuedTokens()
    }

    /// Huawei `token:delete`: the distinct (appId, token) pairs deleted, in order
    /// of first deletion. Empty for other providers.
    /// Alipay only: the signed form body of the notice Alipay pushes when `userID` cancels.
    public func alipayCancellationNotice(userID: String, at time: Date = Date()) -> String? {
        (self.behavior as? AlipayLoginBehavior)?.cancellationNotice(userID: userID, at: time)
    }

    /// Sign in with Apple's `/auth/revoke` and Google's `/revoke`: the tokens revoked, in order, each once.
    public func revokedTokens() -> [String] {
        (self.behavior as? AppleLoginBehavior)?.revokedTokens() ?? (self.behavior as? GoogleLoginBehavior)?.revokedTokens() ?? []
    }

    /// APNs only: the device token is unknown from now on (410 `Unregistered`).
    public func apnsUnregister(_ token: String) {
        (self.behavior as? APNsBehavior)?.unregister(token)
    }

    public func deletedTokens() -> [DeletedPushToken] {
        (self.behavior as? HuaweiPushBehavior)?.deletions().distinct ?? []
    }

    /// Huawei `token:delete`: every successful call, duplicates included. A test
    /// proves "no duplicate deletion effect" by comparing it with `deletedTokens()`.
    public func tokenDeletionCalls() -> [DeletedPushToken] {
        (self.behavior as? HuaweiPushBehavior)?.deletions().calls ?? []
    }

    /// Stops the server and waits until it has stopped.
    public func shutdown() async {
        // A graceful shutdown, not a cancellation: in-flight exchanges finish and nothing is logged as an error.
        await self.group.triggerGracefulShutdown()
        _ = await self.server.result
    }

    /// Starts a simulator for `behavior` on 127.0.0.1, port 0, and returns once
    /// it is accepting connections.
    static func start(behavior: any ProviderBehavior, logger: Logger) async throws -> ProviderSimulator {
        let recorder = SimulatorRecorder()
        let responder = SimulatorResponder(behavior: behavior, recorder: recorder)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        var logger = logger
        logger[metadataKey: "simulator.provider"] = .string(behavior.provider)
        let app = Application(
            responder: responder,
            server: behavior.speaksHTTP2Only ? .plaintextHTTP2() : .http1(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "\(behavior.provider)-simulator"),
            onServerRunning: { channel in
                if let port = channel.localAddress?.port { portContinuation.yield(port) }
                portContinuation.finish()
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let server = Task {
            defer { portContinuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            server.cancel()
            let result = await server.result
            throw SimulatorStartError(provider: behavior.provider, cause: result.failure)
        }
        return ProviderSimulator(behavior: behavior, recorder: recorder, port: port, server: server, group: group)
    }
}

/// A simulator could not start (its server failed before binding).
public struct SimulatorStartError: Error, CustomStringConvertible {
    public let provider: String
    public let cause: (any Error)?

    public var description: String {
        "the \(self.provider) simulator did not start on 127.0.0.1: \(self.cause.map { "\($0)" } ?? "server stopped before binding")"
    }
}

/// Huawei `token:delete` effect: which app's token was deleted.
public struct DeletedPushToken: Sendable, Hashable {
    public let appID: String
    public let token: String

    public init(appID: String, token: String) {
        self.appID = appID
        self.token = token
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
