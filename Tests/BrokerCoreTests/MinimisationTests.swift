import BrokerCore
import BrokerFields
import BrokerPayload
import Foundation
import Testing

/// `minimise:`: the transforms, `check`'s rules, and the decision and re-serialisation of a
/// minimised field in JSON, embedded JSON, form, query and header.
@Suite struct MinimisationTests {
    static let taxonomy = PolicyFile(name: "contracts/taxonomy.yaml", text: """
        categories:
          system.operations: { personal: false }
          user.location.precise: { sensitive: true }
          user.location.imprecise: { sensitive: false }
          user.device.ip_address: { sensitive: false }
          user.device.network_prefix: { sensitive: false }
          user.contact.phone_number: { sensitive: false }
          user.contact.phone_masked: { sensitive: false }
          user.government_id.national_identification_number: { sensitive: true }
        purposes: [functional.service]
        """)
    static let contract = PolicyFile(name: "contracts/geo.yaml", text: """
        provider: geo
        version: "1"
        title: Geo
        effective: 2025-01-01
        region: CN
        retention_days: 0
        purposes:
          functional.service:
            categories: [user.location.precise, user.location.imprecise, user.device.ip_address,
                         user.device.network_prefix, user.contact.phone_number, user.contact.phone_masked]
        """)
    static let round = "minimise: { transform: round_coordinates, decimals: 2, category: user.location.imprecise }"
    static let adapter = """
        provider: geo
        kind: location
        upstream: https://geo.example.com
        hosts: [geo.example.com]
        credentials: { type: header, header: X-Key, secret: { env: GEO_KEY } }
        operations:
          point:
            method: POST
            path: /point
            purpose: functional.service
            body: json
            undeclared: block
            fields:
              lat:          { category: user.location.precise, \(round) }
              lng:          { category: user.location.precise, \(round) }
              where:        { category: user.location.precise, \(round) }
              phone:        { category: user.contact.phone_number, minimise: { transform: mask, keep_first: 3, keep_last: 4, category: user.contact.phone_masked } }
              extra:
                encoding: json
                fields:
                  loc:      { category: user.location.precise, \(round) }
            headers:
              x-client-ip:  { category: user.device.ip_address, minimise: { transform: ip_prefix, ipv4: 24, ipv6: 48, category: user.device.network_prefix } }
          lookup:
            method: GET
            path: /lookup
            purpose: functional.service
            body: none
            undeclared: block
            query:
              location:     { category: user.location.precise, \(round) }
              ip:           { category: user.device.ip_address, on_deny: strip, minimise: { transform: ip_prefix, category: user.device.network_prefix } }
        """

    static func bundle(_ adapter: String = MinimisationTests.adapter) -> (PolicyBundle?, [PolicyIssue]) {
        PolicyBundle.load(taxonomy: taxonomy, contracts: [contract], adapters: [PolicyFile(name: "adapters/geo.yaml", text: adapter)])
    }

    static let engine: PolicyEngine = {
        guard let bundle = bundle().0 else { fatalError("\(bundle().1)") }
        return PolicyEngine(bundle: bundle)
    }()

    static let caller = Caller(id: "maps", roles: [.share], providers: ["geo"])

    func decide(_ method: String, _ path: String, query: String? = nil, body: String = "", contentType: String? = nil,
                headers: [HeaderField] = [], grants: [Grant]) -> ShareDecision {
        let request = ShareRequest(caller: Self.caller, provider: "geo", target: .http(method: method, path: path, query: query),
                                   headers: headers, contentType: contentType, body: Array(body.utf8), subject: "u1",
                                   purpose: nil, time: now)
        return Self.engine.evaluate(request, context: SubjectContext(subject: Subject(id: "u1"), grants: grants),
                                    decoder: StrictPayloadDecoder())
    }

    /// Consent for everything but without separate consent: precise location (sensitive) is denied, imprecise is not.
    let plain = Grant.make("g1", provider: "geo", purpose: "functional.service")
    let separate = Grant.make("g2", provider: "geo", purpose: "functional.service", separate: true)
    let coarseOnly = Grant.make("g3", provider: "geo", purpose: "functional.service",
                                categories: ["user.location.imprecise", "user.device.network_prefix", "user.contact.phone_masked"])

    // MARK: The transforms

    @Test func roundingIsDecimalAndHalfAwayFromZero() {
        let two = Minimisation(transform: .roundCoordinates(decimals: 2), category: "c")
        #expect(two.apply(.string("116.481488,39.990464")) == .string("116.48,39.99"))
        #expect(two.apply(.string("39.995,-116.005")) == .string("40.00,-116.01"))
        // One point unless the field takes several (MinimisationStrictTests).
        #expect(two.apply(.string("116.481488,39.990464|116.1,39.2")) == nil)
        #expect(two.apply(.number("39.990464")) == .number("39.99"))
        #expect(two.apply(.number("-0.001")) == .number("0.00"))
        #expect(two.apply(.number("99.999")) == .number("100.00"))
        #expect(Minimisation(transform: .roundCoordinates(decimals: 0), category: "c").apply(.number("39.5")) == .number("40"))
        // Anything that is not a list of plain decimals is not minimised (the field is then denied).
        for bad in ["", "116.48, 39.99", "1e5,2", "abc", "116.,39", ",", "116.48,,39.99", "+1,2"] {
            #expect(two.apply(.string(bad)) == nil, "\(bad)")
        }
        #expect(two.apply(.number("1e5")) == nil)
        #expect(two.apply(.bool(true)) == nil)
    }

    @Test func ipPrefixZeroesTheHostBits() {
        let prefix = Minimisation(transform: .ipPrefix(ipv4: 24, ipv6: 48), category: "c")
        #expect(prefix.apply(.string("114.247.50.2")) == .string("114.247.50.0"))
        #expect(prefix.apply(.string("2001:db8:85a3:8d3:1319:8a2e:370:7348")) == .string("2001:db8:85a3::"))
        #expect(Minimisation(transform: .ipPrefix(ipv4: 16, ipv6: 32), category: "c").apply(.string("10.1.2.3")) == .string("10.1.0.0"))
        for bad in ["", "1.2.3", "1.2.3.4.5", "01.2.3.4", "example.com", "1.2.3.4/24", " 1.2.3.4"] {
            #expect(prefix.apply(.string(bad)) == nil, "\(bad)")
        }
    }

    @Test func maskKeepsTheEndsAndNeedsSomethingToHide() {
        let mask = Minimisation(transform: .mask(keepFirst: 3, keepLast: 4), category: "c")
        #expect(mask.apply(.string("13812345678")) == .string("138****5678"))
        #expect(mask.apply(.string("张三丰先生的号码")) == .string("张三丰*生的号码"))
        #expect(mask.apply(.string("1234567")) == nil)
        #expect(mask.apply(.number("13812345678")) == nil)
    }

    // MARK: check

    @Test func theRepositoryAndThisAdapterAreValid() {
        #expect(Self.bundle().1.isEmpty, "\(Self.bundle().1)")
    }

    @Test func checkRefusesATransformThatDoesNotSuitTheCategory() {
        func issues(_ field: String) -> [String] {
            let adapter = Self.adapter.replacingOccurrences(
                of: "      lat:          { category: user.location.precise, \(Self.round) }", with: "      lat:          " + field)
            return Self.bundle(adapter).1.map(\.description)
        }
        #expect(issues("{ category: user.contact.phone_number, \(Self.round.replacingOccurrences(of: "user.location.imprecise", with: "user.contact.phone_masked")) }")
            .contains { $0.contains("round_coordinates applies to a location") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: ip_prefix, category: user.location.imprecise } }")
            .contains { $0.contains("ip_prefix applies to an IP address") })
        // Past /64 an IPv6 prefix keeps part of the interface identifier (a MAC, an IPv4 address).
        #expect(issues("{ category: user.device.ip_address, minimise: { transform: ip_prefix, ipv6: 96, category: user.device.network_prefix } }")
            .contains { $0.contains("ipv6") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: blur, category: user.location.imprecise } }")
            .contains { $0.contains("transform must be round_coordinates, ip_prefix or mask") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: round_coordinates, decimals: 9, category: user.location.imprecise } }")
            .contains { $0.contains("decimals must be at most 5") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: round_coordinates, category: user.location.imprecise } }")
            .contains { $0.contains("round_coordinates needs decimals") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: round_coordinates, decimals: 2, keep_first: 1, category: user.location.imprecise } }")
            .contains { $0.contains("keep_first is not a parameter of round_coordinates") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: round_coordinates, decimals: 2, category: user.location } }")
            .contains { $0.contains("'user.location' is not in the taxonomy") })
        #expect(issues("{ category: user.location.precise, minimise: { transform: round_coordinates, decimals: 2, category: user.location.precise } }")
            .contains { $0.contains("must be a coarser category beside") })
        #expect(issues("{ category: user.contact.phone_number, minimise: { transform: mask, keep_first: 1, category: user.government_id.national_identification_number } }")
            .contains { $0.contains("is sensitive and 'user.contact.phone_number' is not") })
        #expect(issues("{ category: user.location.precise, revocation_key: true, \(Self.round) }")
            .contains { $0.contains("a revocation_key field cannot be minimised") })
        // Every issue names the adapter file and a line.
        let one = Self.bundle(Self.adapter.replacingOccurrences(of: "decimals: 2", with: "decimals: 7")).1
        #expect(!one.isEmpty && one.allSatisfy { $0.file == "adapters/geo.yaml" && $0.line > 0 })
    }

    /// A contract narrowed to exclude the coarse category installs (docs/policy-files.md: narrowing a contract is never an error): check warns that the
    /// minimisation never applies.
    @Test func checkWarnsAboutACoarseCategoryTheContractNeverAllows() throws {
        let narrowed = PolicyFile(name: "contracts/geo.yaml", text: Self.contract.text
            .replacingOccurrences(of: "user.location.imprecise, ", with: ""))
        let (bundle, issues) = PolicyBundle.load(taxonomy: Self.taxonomy, contracts: [narrowed],
                                                 adapters: [PolicyFile(name: "adapters/geo.yaml", text: Self.adapter)])
        #expect(issues.isEmpty, "\(issues)")
        let warnings = try #require(bundle).outOfContractScope.map(\.message)
        #expect(warnings.contains { $0.contains("minimise: category 'user.location.imprecise' is not allowed by any purpose of the contract, so it never applies") },
                "\(warnings)")
    }

    // MARK: Decisions and what is sent

    @Test func aDeniedPreciseValueIsSentMinimisedInJSONAndEmbeddedJSON() throws {
        let body = #"{"lat":39.990464,"lng":116.481488,"where":"116.481488,39.990464","phone":"13812345678","extra":"{\"loc\":\"39.990464,116.481488\",\"n\":1}"}"#
        // `extra.n` is undeclared: the share blocks. Without it:
        let clean = body.replacingOccurrences(of: #",\"n\":1"#, with: "")
        let decision = decide("POST", "/point", body: clean, contentType: "application/json", grants: [plain])
        #expect(decision.verdict == .allowed, "\(decision.code as Any) \(decision.message ?? "")")
        let byPath = Dictionary(uniqueKeysWithValues: decision.fields.map { ($0.path.description, $0) })
        for path in ["lat", "lng", "where", "extra.loc"] {
            let field = try #require(byPath[path])
            #expect(field.action == .minimised, "\(path)")
            #expect(field.category == "user.location.imprecise")
            #expect(field.minimisedFrom?.category == "user.location.precise")
            #expect(field.minimisedFrom?.reason == .separateConsentRequired)
            #expect(field.grantID == "g1")
        }
        // The phone number is allowed as it is: minimising applies only to a denied category.
        #expect(byPath["phone"]?.action == .sent && byPath["phone"]?.value == .string("13812345678"))
        let sent = String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self)
        #expect(sent == #"{"lat":39.99,"lng":116.48,"where":"116.48,39.99","phone":"13812345678","extra":"{\"loc\":\"39.99,116.48\"}"}"#)

        // With separate consent the precise values go as they came.
        let full = decide("POST", "/point", body: clean, contentType: "application/json", grants: [separate])
        #expect(full.fields.allSatisfy { $0.action == .sent })
        #expect(String(decoding: try #require(full.forwarded(.body)), as: UTF8.self).contains(#""lat":39.990464"#))

        // A share blocked by another field sends nothing and reports the declared category.
        let blocked = decide("POST", "/point", body: body, contentType: "application/json", grants: [plain])
        #expect(blocked.verdict == .blocked && blocked.code == .undeclaredField)
        #expect(blocked.fields.first { $0.path.description == "lat" }?.category == "user.location.precise")
        #expect(blocked.fields.allSatisfy { $0.action == .blocked && $0.minimisedFrom == nil })
    }

    @Test func aGrantOfTheCoarseCategoryOnlyGetsTheMinimisedValueAndMaskedPhone() throws {
        let body = #"{"lat":39.990464,"phone":"13812345678"}"#
        let decision = decide("POST", "/point", body: body, contentType: "application/json",
                              headers: [HeaderField("X-Client-IP", "114.247.50.2")], grants: [coarseOnly])
        #expect(decision.verdict == .allowed)
        let phone = try #require(decision.fields.first { $0.path.description == "phone" })
        #expect(phone.action == .minimised && phone.value == .string("138****5678") && phone.minimisedFrom?.reason == .consentMissing)
        #expect(String(decoding: try #require(decision.forwarded(.body)), as: UTF8.self) == #"{"lat":39.99,"phone":"138****5678"}"#)
        #expect(decision.forwardedHeaders.map(\.value) == ["114.247.50.0"])
    }

    @Test func aValueTheTransformCannotReadIsDeniedAsBefore() {
        let decision = decide("POST", "/point", body: #"{"lat":"north"}"#, contentType: "application/json", grants: [plain])
        #expect(decision.verdict == .blocked && decision.code == .separateConsentRequired)
        // No grant for the coarse category either: denied with the precise category's reason.
        let none = decide("GET", "/lookup", query: "location=39.990464,116.481488", grants: [])
        #expect(none.verdict == .blocked && none.code == .consentMissing)
    }

    @Test func queryValuesAreMinimisedAndARepeatedStrippedNameIsNotHalfSent() throws {
        let decision = decide("GET", "/lookup", query: "location=39.990464%2C116.481488&ip=2001:db8:85a3:8d3::1", grants: [coarseOnly])
        #expect(decision.verdict == .allowed)
        #expect(String(decoding: try #require(decision.forwarded(.query)), as: UTF8.self)
            == "location=39.99%2C116.48&ip=2001%3Adb8%3A85a3%3A%3A")
        // Two `ip` parameters, one unreadable: it is stripped, so the name leaves with both, and the
        // minimised one is recorded as stripped too.
        let repeated = decide("GET", "/lookup", query: "ip=114.247.50.2&ip=not-an-ip", grants: [coarseOnly])
        #expect(repeated.verdict == .redacted)
        #expect(repeated.fields.allSatisfy { $0.action == .stripped })
        #expect(repeated.fields.first?.category == "user.device.ip_address")
        #expect(try #require(repeated.forwarded(.query)).isEmpty)
    }

    @Test func formBodiesReplaceEveryOccurrenceByItsOwnValue() throws {
        let form = try FormBody(Array("a=1.23456&a=9.87654&b=x".utf8), limits: PayloadLimits())
        let path = FieldPath(keys: "a")
        let sent = form.serialized(removing: [], replacing: [path: [.string("1.23456"): .string("1.23"), .string("9.87654"): .string("9.88")]])
        #expect(String(decoding: sent, as: UTF8.self) == "a=1.23&a=9.88&b=x")
    }

    @Test func jsonReplacementKeepsArrayIndicesAndNeedsTheReceivedValue() throws {
        let body = try JSONBody(Array(#"{"p":[1.555,"x",2.5],"q":"keep"}"#.utf8), limits: PayloadLimits())
        let replacing: FieldReplacements = [
            FieldPath([.key(ExactKey("p")), .index(0)]): [.number("1.555"): .number("1.56")],
            FieldPath([.key(ExactKey("p")), .index(2)]): [.number("2.5"): .number("3")],
            // Not the value that is there: left alone.
            FieldPath(keys: "q"): [.string("other"): .string("changed")],
        ]
        let sent = body.serialized(removing: [FieldPath([.key(ExactKey("p")), .index(1)])], replacing: replacing)
        #expect(String(decoding: sent, as: UTF8.self) == #"{"p":[1.56,3],"q":"keep"}"#)
    }
}
