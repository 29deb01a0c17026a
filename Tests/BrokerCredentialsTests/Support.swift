import BrokerCore
import BrokerCurl
import Foundation
import Logging
import Testing
@testable import BrokerCredentials

/// A clock the test moves by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    init(_ start: Date = Date(timeIntervalSince1970: 1_700_000_000)) { current = start }

    var now: Date { lock.withLock { current } }
    func advance(_ seconds: TimeInterval) { lock.withLock { current = current.addingTimeInterval(seconds) } }
    var function: @Sendable () -> Date { { [self] in now } }
}

func testLogger() -> Logger {
    var logger = Logger(label: "test.credentials")
    logger.logLevel = .error
    return logger
}

func makeClient() throws -> CurlUpstreamClient {
    try CurlUpstreamClient(options: CurlClientOptions(connectTimeout: .seconds(2), totalTimeout: .seconds(5)),
                           logger: testLogger())
}

/// Resolves every reference of `spec` to a value in `values` keyed by env name.
func secrets(_ values: [String: String]) -> [SecretReference: String] {
    Dictionary(uniqueKeysWithValues: values.map { (SecretReference.env($0.key), $0.value) })
}

func loopback(_ port: Int) -> UpstreamURL { UpstreamURL("http://127.0.0.1:\(port)")! }

func field(_ location: FieldLocation, _ name: String) -> FieldDeclaration {
    FieldDeclaration(location: location, pattern: FieldPattern([.key(ExactKey(name))]), category: nil, credential: true)
}

/// A client for credential types that must never touch the network.
struct NoNetworkClient: UpstreamClient {
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        Issue.record("unexpected network call to \(request.method)")
        throw UpstreamError(code: .unreachable, message: "no network in this test")
    }
}

/// Runs `body`, expecting a `CredentialError` whose message holds none of `secretValues`.
@discardableResult
func expectCredentialError(_ code: CredentialError.Code, secretValues: [String],
                           sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () async throws -> Void) async -> CredentialError? {
    do {
        try await body()
        Issue.record("expected a CredentialError", sourceLocation: sourceLocation)
        return nil
    } catch let error as CredentialError {
        #expect(error.code == code, sourceLocation: sourceLocation)
        for secret in secretValues {
            #expect(!error.message.contains(secret), "error message leaks a secret", sourceLocation: sourceLocation)
            #expect(!error.description.contains(secret), "error description leaks a secret", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a CredentialError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
