@testable import BrokerTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging

/// A reply from a simulator, read over a real loopback connection.
struct SimulatorReply: Sendable {
    let status: Int
    let body: [UInt8]

    var json: JSONValue? { try? JSONValue.parse(self.body) }
    var text: String { String(decoding: self.body, as: UTF8.self) }

    subscript(key: String) -> JSONValue? { self.json?[key] }
}

/// Sends raw HTTP/1.1 requests to a simulator with full control of every header
/// (including `Host`), the way the broker's upstream client does.
enum SimulatorHTTP {
    static func send(
        _ simulator: ProviderSimulator, _ method: HTTPRequest.Method, _ target: String,
        headers: [(String, String)] = [], body: [UInt8]? = nil, host: String? = nil
    ) async throws -> SimulatorReply {
        var fields = HTTPFields()
        for (name, value) in headers {
            guard let fieldName = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        let request = TestClient.Request(
            target, method: method, authority: host ?? "127.0.0.1:\(simulator.port)", headers: fields,
            body: body.map { ByteBuffer(bytes: $0) }
        )
        return try await TestClient.withClient(host: "127.0.0.1", port: simulator.port) { client in
            let response = try await client.execute(request)
            return SimulatorReply(status: response.status.code, body: response.body.map { Array($0.readableBytesView) } ?? [])
        }
    }

    static func form(_ simulator: ProviderSimulator, _ path: String, _ pairs: [(String, String)],
                     headers: [(String, String)] = []) async throws -> SimulatorReply {
        let body = pairs.map { "\(FormEncoding.encode($0.0))=\(FormEncoding.encode($0.1))" }.joined(separator: "&")
        return try await self.send(simulator, .post, path,
                                   headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers,
                                   body: Array(body.utf8))
    }

    static func get(_ simulator: ProviderSimulator, _ path: String, _ pairs: [(String, String)]) async throws -> SimulatorReply {
        let query = pairs.map { "\(FormEncoding.encode($0.0))=\(FormEncoding.encode($0.1))" }.joined(separator: "&")
        return try await self.send(simulator, .get, query.isEmpty ? path : "\(path)?\(query)")
    }
}

/// Starts the five simulators for one test and always shuts them down.
func withSimulators<T: Sendable>(
    credentials: SimulatorCredentials = .random(),
    tokenLifetime: Duration = .seconds(3600),
    _ body: (ProviderSimulators) async throws -> T
) async throws -> T {
    var logger = Logger(label: "simulator-test")
    logger.logLevel = .warning
    let simulators = try await ProviderSimulators.start(credentials: credentials, tokenLifetime: tokenLifetime, logger: logger)
    do {
        let value = try await body(simulators)
        await simulators.shutdown()
        return value
    } catch {
        await simulators.shutdown()
        throw error
    }
}
