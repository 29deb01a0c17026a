import BrokerGateway
import Foundation
import Testing
import Yams

/// Issue 14, item 2: `GET /openapi.yaml` serves the description, and its routes are the
/// server's routes both ways (a route added without its description fails here, and so does a
/// described route the server does not have).
@Suite struct OpenAPIRouteTests {
    static let methods = ["get", "put", "post", "delete", "patch", "head", "options"]

    /// `/v1/subjects/:id` and `/v1/subjects/{id}` → `/v1/subjects/{id}`; the rest-of-path `**` → `{path}`.
    static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").map { part -> String in
            if part == "**" { return "{path}" }
            if part.hasPrefix(":") { return "{" + part.dropFirst() + "}" }
            return String(part)
        }.joined(separator: "/")
    }

    @Test func theDocumentNamesExactlyTheServersRoutes() async throws {
        try await withBroker { broker in
            let response = try await broker.call("GET", "/openapi.yaml", token: nil)
            #expect(response.status == 200)
            #expect(response.headers.first { $0.name.lowercased() == "content-type" }?.value == "application/yaml")
            let repository = try String(contentsOf: Broker.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
            #expect(response.text == repository, "the served document is the repository's openapi.yaml")
            let document = try #require(try Yams.load(yaml: response.text) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: Any])
            var described = Set<String>()
            for (path, item) in paths {
                guard let item = item as? [String: Any] else { continue }
                for method in Self.methods where item[method] != nil {
                    described.insert(method.uppercased() + " " + Self.normalized(path))
                }
            }
            let served = Set(broker.gateway.routes().map { $0.method + " " + Self.normalized($0.path) })
            #expect(served.count > 40)
            #expect(described.subtracting(served).sorted() == [], "described but not served")
            #expect(served.subtracting(described).sorted() == [], "served but not described")
        }
    }
}
