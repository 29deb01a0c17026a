import BrokerCore
import Foundation
import Testing

/// Issue 30's adapter keys as `check` reads them: `params:` (RPC parameters in the query or a form
/// body, one declaration) and `token_endpoints:` (an SDK's own sign-in, the broker's to answer).
struct SDKShapePolicyTests {
    /// The repository's policy with `adapters/<file>` edited; the issues `check` reports.
    static func issues(editing file: String, _ edit: (String) -> String) -> [String] {
        let root = Policies.repository
        func files(_ folder: String) -> [PolicyFile] {
            let directory = root.appendingPathComponent(folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
                .map { name in
                    let text = (try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)) ?? ""
                    return PolicyFile(name: "\(folder)/\(name)", text: "\(folder)/\(name)" == file ? edit(text) : text)
                }
        }
        let contracts = files("contracts")
        return PolicyBundle.load(taxonomy: contracts.first { $0.name.hasSuffix("/taxonomy.yaml") },
                                 contracts: contracts.filter { !$0.name.hasSuffix("/taxonomy.yaml") && !$0.name.hasSuffix(PublishedSharingList.fileName)
                                     && !$0.name.hasSuffix(PrivacyPolicy.fileName) },
                                 adapters: files("adapters"),
                                 privacyPolicy: contracts.first { $0.name.hasSuffix("/" + PrivacyPolicy.fileName) }).issues.map(\.description)
    }

    @Test func paramsCoverTheQueryAndAFormBodyAndStandAlone() {
        let engine = PolicyEngine(bundle: Policies.real, homeRegion: "CN")
        let caller = Caller(id: "svc", roles: [.share], providers: ["alibaba-cloudauth"])
        let grant = Grant.make("g", provider: "alibaba-cloudauth", purpose: "essential.legal_obligation", separate: true)
        let form = "IdentifyNum=11010519491231002X&ParamType=normal&UserName=%E5%BC%A0%E4%B8%89"
        func decide(query: String?, body: String, contentType: String?) -> ShareDecision {
            engine.evaluate(ShareRequest(caller: caller, provider: "alibaba-cloudauth", target: .http(method: "POST", path: "/", query: query),
                                         headers: [HeaderField("x-acs-action", "Id2MetaVerify")], contentType: contentType,
                                         body: Array(body.utf8), subject: "u1", time: now),
                            context: SubjectContext(subject: nil, grants: [grant]), decoder: StrictPayloadDecoder())
        }
        let inQuery = decide(query: form, body: "", contentType: nil)
        let inBody = decide(query: nil, body: form, contentType: "application/x-www-form-urlencoded")
        #expect(inQuery.verdict == .allowed && inBody.verdict == .allowed, "\(inQuery.message ?? "") \(inBody.message ?? "")")
        func sent(_ decision: ShareDecision) -> [String] {
            decision.fields.filter { $0.action == .sent }.map { "\($0.path) \($0.category ?? "")" }.sorted()
        }
        #expect(sent(inQuery) == sent(inBody) && sent(inBody).contains("UserName user.name"), "\(sent(inQuery)) \(sent(inBody))")
        #expect(inBody.fields.allSatisfy { $0.location != .query } && inQuery.fields.allSatisfy { $0.location != .body })
        let undeclared = decide(query: nil, body: form + "&Mobile=13800000000", contentType: "application/x-www-form-urlencoded")
        #expect(undeclared.verdict == .blocked && undeclared.code == .undeclaredField)

        let adapter = "adapters/alibaba-cloudauth.yaml"
        #expect(Self.issues(editing: adapter) { $0.replacingOccurrences(of: "    body: form\n", with: "    body: json\n") }
            .contains { $0.contains("params needs body: form") })
        #expect(Self.issues(editing: adapter) { $0.replacingOccurrences(of: "    params:\n", with: "    query:\n      Extra: { category: system.operations }\n    params:\n") }
            .contains { $0.contains("give params, or query and fields, not both") })
    }

    @Test func tokenEndpointsAreCheckedAndTheirHostsTunnelled() throws {
        let fcm = try #require(Policies.real.adapters["fcm"])
        #expect(fcm.tokenEndpoints.map(\.host) == ["oauth2.googleapis.com"] && fcm.tunnelHosts.contains("oauth2.googleapis.com"))
        let endpoint = try #require(fcm.tokenEndpoints.first)
        #expect(endpoint.matches(method: "POST", path: "/token") && !endpoint.matches(method: "POST", path: "/revoke"))
        let jwtBearer = Array("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x".utf8)
        #expect(endpoint.matches(formBody: jwtBearer, contentType: "application/x-www-form-urlencoded"))
        #expect(!endpoint.matches(formBody: jwtBearer, contentType: "application/json"))
        #expect(!endpoint.matches(formBody: Array("grant_type=authorization_code&code=x".utf8), contentType: "application/x-www-form-urlencoded"))
        #expect(!endpoint.matches(formBody: jwtBearer + Array("&grant_type=authorization_code".utf8), contentType: "application/x-www-form-urlencoded"),
                "a selecting parameter given twice selects nothing")
        #expect(Policies.real.tokenEndpointsByHost["oauth2.googleapis.com"]?.map(\.provider) == ["fcm"])

        let file = "adapters/fcm.yaml"
        for (edit, message) in [
            ("url: https://oauth2.googleapis.com/token", "url: http://oauth2.googleapis.com/token", "url must be https://host[:port]/path"),
            ("method: POST\n    match_form", "method: GET\n    match_form", "method must be POST"),
            ("answer: oauth2_bearer", "answer: cookie", "answer must be oauth2_bearer"),
            ("    match_form: { grant_type: \"urn:ietf:params:oauth:grant-type:jwt-bearer\" }\n", "", "needs match_form"),
        ].map({ (($0.0, $0.1), $0.2) }) {
            let issues = Self.issues(editing: file) { $0.replacingOccurrences(of: edit.0, with: edit.1) }
            #expect(issues.contains { $0.contains(message) }, "\(message): \(issues)")
        }
    }
}
