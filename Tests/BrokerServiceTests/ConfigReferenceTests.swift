import BrokerCore
import BrokerService
import Foundation
import Testing

/// docs/configuration.md cannot drift from the parser: its table lists exactly the keys
/// `BrokerConfig.decode` takes, each default in backticks is the parser's own, each example in
/// backticks is accepted, and its complete example decodes.
struct ConfigReferenceTests {
    static let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")

    struct Row { var key: String; var defaultValue: String?; var example: String? }

    /// The table's rows: `| `key` | type | default | example | what |`; a default or an example counts
    /// only when the whole cell is one backticked value.
    static func rows() throws -> [Row] {
        let text = try String(contentsOf: page, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line -> Row? in
            guard line.hasPrefix("| `") else { return nil }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 6 else { return nil }
            func code(_ cell: String) -> String? {
                guard cell.hasPrefix("`"), cell.hasSuffix("`"), cell.count >= 2 else { return nil }
                let inner = String(cell.dropFirst().dropLast())
                return inner.contains("`") ? nil : inner
            }
            return Row(key: code(cells[1]) ?? cells[1], defaultValue: code(cells[3]), example: code(cells[4]))
        }
    }

    /// A YAML document setting one dotted key (not under a list) to `value`.
    static func yaml(_ key: String, _ value: String) -> String { yaml([(key, value)]) }

    /// A YAML document setting dotted keys (not under a list) that share their sections, in order.
    static func yaml(_ pairs: [(key: String, value: String)]) -> String {
        var out = ""
        var open: [Substring] = []
        for (key, value) in pairs {
            let parts = key.split(separator: ".")
            var depth = 0
            while depth < min(open.count, parts.count - 1), open[depth] == parts[depth] { depth += 1 }
            open = Array(parts.prefix(depth))
            for part in parts[depth...].dropLast() {
                out += String(repeating: "  ", count: open.count) + part + ":\n"
                open.append(part)
            }
            out += String(repeating: "  ", count: open.count) + parts[parts.count - 1] + ": " + value + "\n"
        }
        return out
    }

    /// Keys the parser takes only together (both or neither): each example is tried with its partner's.
    /// The keys a key's example needs beside it (a section's required keys).
    static let partners = ["tls_interception.ca_certificate": ["tls_interception.ca_key"],
                           "tls_interception.ca_key": ["tls_interception.ca_certificate"],
                           "shadow.adapters": ["shadow.contracts"], "shadow.contracts": ["shadow.adapters"],
                           "listen_tls.address": ["listen_tls.certificate", "listen_tls.key"],
                           "listen_tls.certificate": ["listen_tls.address", "listen_tls.key"],
                           "listen_tls.key": ["listen_tls.address", "listen_tls.certificate"],
                           "listen_tls.client_ca": ["listen_tls.address", "listen_tls.certificate", "listen_tls.key"]]

    @Test func theYAMLHelperNestsSharedSections() {
        #expect(Self.yaml("limits.max_fields", "5") == "limits:\n  max_fields: 5\n")
        #expect(Self.yaml([("shadow.adapters", "a"), ("shadow.contracts", "c"), ("node", "n")])
                == "shadow:\n  adapters: a\n  contracts: c\nnode: n\n")
    }

    static func decoded(_ yaml: String) -> (BrokerConfig?, [String]) {
        let (config, issues) = BrokerConfig.decode(yaml: yaml, file: "reference.yaml")
        return (config, issues.map(\.description))
    }

    @Test func theTableListsExactlyTheKeysTheParserTakes() throws {
        let documented = try Self.rows().map(\.key)
        #expect(documented.count == Set(documented).count, "a key listed twice")
        #expect(Set(documented) == Set(BrokerConfig.keyPaths),
                "missing from the page: \(Set(BrokerConfig.keyPaths).subtracting(documented).sorted()); not parsed: \(Set(documented).subtracting(BrokerConfig.keyPaths).sorted())")
    }

    @Test func everyDocumentedDefaultIsTheParsersAndEveryExampleIsAccepted() throws {
        let empty = String(describing: try #require(Self.decoded("").0))
        var checkedDefaults = 0
        let all = try Self.rows()
        let examples = Dictionary(all.compactMap { row in row.example.map { (row.key, $0) } }, uniquingKeysWith: { first, _ in first })
        for row in all where !row.key.hasPrefix("clients[]") && !row.key.hasPrefix("users") {
            if let value = row.defaultValue {
                let (config, issues) = Self.decoded(Self.yaml(row.key, value))
                #expect(issues.isEmpty, "\(row.key): the default \(value) is refused: \(issues)")
                #expect(config.map { String(describing: $0) } == empty, "\(row.key): \(value) is not the parser's default")
                checkedDefaults += 1
            }
            if let value = row.example {
                var pairs = [(key: row.key, value: value)]
                for partner in Self.partners[row.key] ?? [] {
                    pairs.append((partner, try #require(examples[partner], "\(partner) has no example")))
                }
                // A section's keys in the order the YAML helper nests them: the section's first.
                pairs.sort { $0.key < $1.key }
                let (config, issues) = Self.decoded(Self.yaml(pairs))
                #expect(config != nil && issues.isEmpty, "\(row.key): the example \(value) is refused: \(issues)")
                if row.defaultValue != nil, row.example != row.defaultValue {
                    #expect(config.map { String(describing: $0) } != empty, "\(row.key): the example \(value) changes nothing")
                }
            }
        }
        #expect(checkedDefaults >= 30)
    }

    @Test func theCompleteExampleAndTheClientAndUserExamplesDecode() throws {
        let text = try String(contentsOf: Self.page, encoding: .utf8)
        let start = try #require(text.range(of: "## A complete example"))
        let block = try #require(text[start.upperBound...].range(of: "```yaml\n"))
        let end = try #require(text[block.upperBound...].range(of: "```"))
        let (config, issues) = Self.decoded(String(text[block.upperBound..<end.lowerBound]))
        #expect(issues.isEmpty, "\(issues)")
        #expect(config?.clients.count == 4)
        // Each client and user key's example, in an otherwise minimal client or token section.
        for row in try Self.rows() {
            guard let value = row.example else { continue }
            if row.key.hasPrefix("clients[].") {
                var fields = ["id": "a", "roles": "[share]", "providers": "[huawei-push]", "token": "{ env: A_TOKEN }"]
                let name = row.key.dropFirst("clients[].".count).split(separator: ".").map(String.init)
                if name == ["token_sha256"] { fields["token"] = nil }
                // A certificate's key, in its section; a certificate needs the TLS listener's client CAs.
                if name.count == 2 { fields[name[0]] = "{ \(name[1]): \(value) }" } else { fields[name[0]] = value }
                let listener = name[0] == "mtls" ? "listen_tls: { address: \"0.0.0.0:8443\", certificate: s.pem, key: s.key, client_ca: c.pem }\n" : ""
                let client = fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                let (decoded, issues) = Self.decoded(listener + "clients:\n  - { \(client) }\n")
                #expect(decoded != nil && issues.isEmpty, "\(row.key): the example \(value) is refused: \(issues)")
            } else if row.key.hasPrefix("users.jwt.") {
                var fields = ["issuer": "\"https://id.example.com\"", "audience": "sharebroker", "algorithms": "[ES256, HS256]",
                              "hs256_secret": "{ env: S }", "jwks": "{ file: jwks.json }"]
                let name = row.key.dropFirst("users.jwt.".count).split(separator: ".")
                if name.count == 2 { fields["jwks"] = "{ \(name[1]): \(value) }" } else { fields[String(name[0])] = value }
                let jwt = fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                let (decoded, issues) = Self.decoded("users:\n  jwt: { \(jwt) }\n")
                #expect(decoded != nil && issues.isEmpty, "\(row.key): the example \(value) is refused: \(issues)")
            }
        }
    }

    @Test func theExampleConfigDecodes() throws {
        let file = Self.page.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples/broker.yaml")
        let (config, issues) = Self.decoded(try String(contentsOf: file, encoding: .utf8))
        #expect(issues.isEmpty, "\(issues)")
        #expect(config?.database.hasPrefix("postgres://") == true)
        #expect(config?.namedSecrets.allSatisfy { if case .file = $0.reference { true } else { false } } == true,
                "every secret of the example comes from a file")
    }
}
