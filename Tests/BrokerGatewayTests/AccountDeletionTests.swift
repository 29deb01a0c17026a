import BrokerCurl
import Foundation
import Testing

/// Issue 13: "when you cancel your account, we will stop using and delete this information", and
/// "if we discover that a child … has provided us with personal information, we immediately delete it".
@Suite(.serialized) struct AccountDeletionTests {
    static let push = "essential.service.notifications.push"
    let propagation = RevocationPropagationTests()

    func push(_ broker: Broker, _ subject: String, token: String) async throws -> UpstreamResponse {
        try await broker.call("POST", "/v1/proxy/huawei-push/v1/10086/messages:send",
                              headers: [("Content-Type", "application/json"), ("X-Share-Subject", subject)],
                              body: #"{"message":{"token":["\#(token)"]}}"#)
    }

    @Test func deletingAnAccountRevokesEverythingAndTellsEveryProviderThatGotData() async throws {
        try await withBroker { broker in
            // Huawei (a deletion API) under an active grant; WeChat (none) under a grant revoked before.
            try await broker.grant("u1", provider: "huawei-push", purpose: Self.push)
            #expect(try await push(broker, "u1", token: "DEL-1").status == 200)
            let wechat = try await broker.grant("u1", provider: "wechat-login", purpose: "essential.service.authentication")
            let login = try await broker.call("GET", "/v1/proxy/wechat-login/sns/userinfo?access_token=A&openid=O",
                                              headers: [("X-Share-Subject", "u1")])
            let loginShare = try #require(login.headerValue("X-Share-Id"))
            #expect(try await broker.call("DELETE", "/v1/subjects/u1/grants/\(wechat)", token: Broker.grantsToken).status == 202)

            let deleted = try await broker.call("DELETE", "/v1/subjects/u1", token: Broker.grantsToken)
            #expect(deleted.status == 202, "\(deleted.text)")
            let id = try #require(deleted.json["revocation_id"] as? String)
            let providers = (deleted.json["providers"] as? [[String: Any]] ?? []).compactMap { $0["provider"] as? String }
            #expect(providers == ["huawei-push", "wechat-login"], "every provider that ever got data: \(deleted.text)")
            #expect((deleted.json["share_ids"] as? [String] ?? []).contains(loginShare), "the share under the revoked grant too")
            _ = try await propagation.waitFor(broker, id, provider: "huawei-push", status: "acknowledged")
            _ = try await propagation.waitFor(broker, id, provider: "wechat-login", status: "manual_required")
            #expect(broker.simulator("huawei-push").tokenDeletionCalls().map(\.token) == ["DEL-1"])

            // Nothing more is shared about them, and the refusal is logged.
            let after = try await push(broker, "u1", token: "DEL-2")
            #expect(after.status == 403 && after.json["code"] as? String == "subject_deleted", "\(after.text)")
            #expect(!broker.simulator("huawei-push").requests().contains { $0.contains("DEL-2") })
            let records = try await broker.records()
            #expect(records.contains { $0.kind == "share" && $0.body.contains(#""code":"subject_deleted""#) })
            #expect(records.contains { $0.body.contains(#""origin":"account_deleted""#) && $0.body.contains(id) })

            // A deleted id never comes back.
            #expect(try await broker.call("PUT", "/v1/subjects/u1", token: Broker.grantsToken,
                                          headers: [("Content-Type", "application/json")], body: "{}").json["code"] as? String
                    == "subject_deleted")
            let regrant = try await broker.call("POST", "/v1/subjects/u1/grants", token: Broker.grantsToken,
                                                headers: [("Content-Type", "application/json")],
                                                body: #"{"provider":"huawei-push","purpose":"\#(Self.push)","separate_consent":false,"cross_border_consent":false,"policy_version":"1","evidence":"e"}"#)
            #expect(regrant.status == 409)
            #expect(try await broker.call("DELETE", "/v1/subjects/u1", token: Broker.grantsToken).status == 409)
            #expect(try await broker.call("DELETE", "/v1/subjects/nobody", token: Broker.grantsToken).status == 404)
        }
    }

    @Test func aUserDeletesTheirOwnAccountAndNoOneElses() async throws {
        try await withBroker { broker in
            try await broker.grant("alice", provider: "huawei-push", purpose: Self.push)
            try await broker.grant("bob", provider: "huawei-push", purpose: Self.push)
            let alice = EndUserTests.token(EndUserTests.claims("alice"))
            #expect(try await broker.call("DELETE", "/v1/subjects/bob", token: alice).status == 404, "another user's account")
            #expect(try await broker.call("DELETE", "/v1/subjects/alice", token: alice).status == 202)
            #expect(try await push(broker, "bob", token: "BOB").status == 200)
            #expect(try await push(broker, "alice", token: "ALICE").json["code"] as? String == "subject_deleted")
        }
    }

    @Test func aSubjectFoundToBeAMinorLosesEveryGrantAndTheirDataIsDeleted() async throws {
        try await withBroker { broker in
            try await broker.grant("kid", provider: "huawei-push", purpose: Self.push)
            #expect(try await push(broker, "kid", token: "KID-1").status == 200)
            let flagged = try await broker.call("PUT", "/v1/subjects/kid", token: Broker.grantsToken,
                                                headers: [("Content-Type", "application/json")], body: #"{"minor":true}"#)
            #expect(flagged.status == 200, "\(flagged.text)")
            let id = try #require(flagged.json["revocation_id"] as? String, "\(flagged.text)")
            _ = try await propagation.waitFor(broker, id, provider: "huawei-push", status: "acknowledged")
            #expect(broker.simulator("huawei-push").tokenDeletionCalls().map(\.token) == ["KID-1"])
            let grants = try await broker.call("GET", "/v1/subjects/kid/grants", token: Broker.grantsToken)
            #expect((grants.json["grants"] as? [[String: Any]] ?? []).allSatisfy { $0["status"] as? String == "revoked" })
            #expect(try await broker.records().contains { $0.body.contains(#""origin":"minor""#) })
            #expect(try await push(broker, "kid", token: "KID-2").json["code"] as? String == "minor_subject")
            // Still a minor: no second revocation.
            let again = try await broker.call("PUT", "/v1/subjects/kid", token: Broker.grantsToken,
                                              headers: [("Content-Type", "application/json")], body: #"{"minor":true}"#)
            #expect(again.status == 200 && again.json["revocation_id"] == nil)

            // A birth date that makes the subject a minor does the same.
            try await broker.grant("teen", provider: "huawei-push", purpose: Self.push)
            #expect(try await push(broker, "teen", token: "TEEN-1").status == 200)
            let year = Calendar(identifier: .gregorian).component(.year, from: Date()) - 12
            let born = try await broker.call("PUT", "/v1/subjects/teen", token: Broker.grantsToken,
                                             headers: [("Content-Type", "application/json")], body: #"{"birth_date":"\#(year)-01-01"}"#)
            let teen = try #require(born.json["revocation_id"] as? String, "\(born.text)")
            _ = try await propagation.waitFor(broker, teen, provider: "huawei-push", status: "acknowledged")
            #expect(broker.simulator("huawei-push").tokenDeletionCalls().map(\.token).sorted() == ["KID-1", "TEEN-1"])
        }
    }
}

/// Issue 13: "in the event of a security incident … we will notify you": who a provider received data about.
@Suite(.serialized) struct ExposureReportTests {
    /// A subject id is the caller's text: in the CSV export it must not become a spreadsheet formula.
    @Test func theCSVNeverHoldsAFormula() async throws {
        try await withBroker { broker in
            // The subject-id rule already refuses `=`, `+` and `@`; a leading `-` is within it and still a formula.
            let subject = "-2-3"
            try await broker.grant(subject, provider: "huawei-push", purpose: AccountDeletionTests.push)
            #expect(try await AccountDeletionTests().push(broker, subject, token: "F1").status == 200)
            let csv = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push", token: Broker.complianceToken,
                                            headers: [("Accept", "text/csv")])
            let lines = String(decoding: csv.body, as: UTF8.self).split(whereSeparator: \.isNewline)
            #expect(lines.count == 2 && lines[1].hasPrefix("'-2-3,"), "\(lines)")
        }
    }

    @Test func theSubjectsAProviderReceivedDataAboutInAWindow() async throws {
        try await withBroker { broker in
            let deletion = AccountDeletionTests()
            try await broker.grant("u1", provider: "huawei-push", purpose: AccountDeletionTests.push)
            try await broker.grant("u2", provider: "huawei-push", purpose: AccountDeletionTests.push)
            for (subject, token) in [("u1", "E1"), ("u1", "E2"), ("u2", "E3")] {
                #expect(try await deletion.push(broker, subject, token: token).status == 200)
            }
            #expect(try await deletion.push(broker, "u3", token: "E4").status == 403, "no grant: nothing received")
            let json = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push", token: Broker.complianceToken)
            #expect(json.status == 200, "\(json.text)")
            let subjects = json.json["subjects"] as? [[String: Any]] ?? []
            #expect(subjects.map { $0["subject"] as? String } == ["u1", "u2"], "\(json.text)")
            #expect(subjects.map { $0["shares"] as? Int } == [2, 1])
            #expect(subjects.allSatisfy { ($0["categories"] as? [String]) == ["user.device.push_token"] })
            #expect((json.json["totals"] as? [String: Any])?["subjects"] as? Int == 2)
            #expect(!json.text.contains("E1"), "never a value")

            let csv = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push", token: Broker.complianceToken,
                                            headers: [("Accept", "text/csv")])
            let lines = String(decoding: csv.body, as: UTF8.self).split(whereSeparator: \.isNewline)
            #expect(lines.first == "subject,categories,shares,first_shared,last_shared" && lines.count == 3, "\(lines)")
            let ndjson = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push&category=user.device",
                                               token: Broker.complianceToken, headers: [("Accept", "application/x-ndjson")])
            #expect(String(decoding: ndjson.body, as: UTF8.self).split(separator: "\n").count == 2)
            let later = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push&since=2100-01-01T00:00:00Z",
                                              token: Broker.complianceToken)
            #expect((later.json["subjects"] as? [Any])?.isEmpty == true)
            let other = try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push&category=user.location",
                                              token: Broker.complianceToken)
            #expect((other.json["subjects"] as? [Any])?.isEmpty == true)
            #expect(try await broker.call("GET", "/v1/reports/exposure", token: Broker.complianceToken).status == 400)
            #expect(try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push&category=nope",
                                          token: Broker.complianceToken).status == 400)
            #expect(try await broker.call("GET", "/v1/reports/exposure?provider=huawei-push", token: Broker.grantsToken).status == 403)
        }
    }
}

/// `POST /v1/subjects/{id}/grants` answers with `warnings` when the grant, recorded as asked, will not
/// cover something: the app learns it then, not from a refused share (found by a new user's run).
@Suite struct GrantWarningTests {
    @Test func aGrantThatWillNotCoverItsSharesSaysWhy() async throws {
        try await withBroker { broker in
            func grant(_ body: String) async throws -> [String] {
                let answer = try await broker.call("POST", "/v1/subjects/w1/grants", token: Broker.grantsToken,
                                                   headers: [("Content-Type", "application/json")], body: body)
                #expect(answer.status == 201, "\(answer.text)")
                return answer.json["warnings"] as? [String] ?? []
            }
            // As asked: no warning.
            #expect(try await grant(#"{"provider":"huawei-push","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"2025-01","evidence":"e"}"#).isEmpty)
            // APNs is in the US, the subject in CN (the home region), and no cross-border consent.
            let apns = try await grant(#"{"provider":"apns","purpose":"essential.service.notifications.push","separate_consent":false,"cross_border_consent":false,"policy_version":"2025-01","evidence":"e"}"#)
            #expect(apns == ["apns processes in US, outside the subject's region CN: without cross_border_consent its shares are refused (cross_border_consent_required)"])
            // FaceID's sensitive categories without separate consent, under a version the privacy policy does not list.
            let faceID = try await grant(#"{"provider":"tencent-faceid","purpose":"essential.legal_obligation","separate_consent":false,"cross_border_consent":false,"policy_version":"v9","evidence":"e"}"#)
            #expect(faceID.count == 2 && faceID[0].contains("are sensitive: without separate_consent they are refused (separate_consent_required)"), "\(faceID)")
            #expect(faceID[1] == "policy_version v9 is not a version of the privacy policy (2025-01, 2025-07)")
        }
    }
}

/// Issue 27, item 5: `GET /v1/subjects/{id}/consent-records`: a grant given, renewed under a newer
/// privacy-policy version and withdrawn, as ISO/IEC TS 27560 consent records that validate against
/// the repository's `schemas/consent-record.schema.json`.
@Suite struct ConsentRecordTests {
    static let push = "essential.service.notifications.push"

    /// Validates `value` against the keywords the repository's schema uses (type, required, properties,
    /// items, enum, minItems); the problems, each with its path.
    static func problems(_ value: Any, _ schema: [String: Any], at path: String = "$") -> [String] {
        var found: [String] = []
        if let wanted = schema["enum"] as? [String], !(value is String && wanted.contains(value as! String)) {
            found.append("\(path): \(value) is not one of \(wanted)")
        }
        switch schema["type"] as? String {
        case "object":
            guard let object = value as? [String: Any] else { return found + ["\(path): not an object"] }
            for key in schema["required"] as? [String] ?? [] where object[key] == nil { found.append("\(path): \(key) is missing") }
            for (key, sub) in schema["properties"] as? [String: [String: Any]] ?? [:] {
                if let member = object[key] { found += problems(member, sub, at: "\(path).\(key)") }
            }
        case "array":
            guard let array = value as? [Any] else { return found + ["\(path): not an array"] }
            if let least = schema["minItems"] as? Int, array.count < least { found.append("\(path): fewer than \(least) items") }
            if let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() { found += problems(item, items, at: "\(path)[\(index)]") }
            }
        case "string": if !(value is String) { found.append("\(path): not a string") }
        case "integer": if !(value is Int) || value is Bool { found.append("\(path): not an integer") }
        case "boolean": if !(value is Bool) { found.append("\(path): not a boolean") }
        default: break
        }
        return found
    }

    @Test func aGrantGivenRenewedAndWithdrawnAsConsentRecords() async throws {
        let schemaData = try Data(contentsOf: Broker.repository.appendingPathComponent("schemas/consent-record.schema.json"))
        try await withBroker { broker in
            let schema = try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any])
            let first = try await broker.grant("c1", provider: "huawei-push", purpose: Self.push)
            let renewed = try await broker.grant("c1", provider: "huawei-push", purpose: Self.push, version: "2025-07")
            let revoke = try await broker.call("DELETE", "/v1/subjects/c1/grants/\(renewed)", token: Broker.grantsToken)
            #expect(revoke.status == 202, "\(revoke.text)")
            let answer = try await broker.call("GET", "/v1/subjects/c1/consent-records", token: Broker.grantsToken)
            #expect(answer.status == 200, "\(answer.text)")
            let records = try #require(answer.json["records"] as? [[String: Any]])
            #expect(records.map { $0["record_id"] as? String } == [first, renewed])
            for record in records { #expect(Self.problems(record, schema).isEmpty, "\(Self.problems(record, schema))") }

            let given = records[0], withdrawn = records[1]
            #expect((given["notice"] as? [String: Any])?["version"] as? String == "2025-01")
            #expect((given["notice"] as? [String: Any])?["url"] as? String == "https://www.example.com/privacy/2025-01")
            #expect((given["controller"] as? [String: Any])?["name"] as? String == "Example Co., Ltd.")
            #expect((given["recipients"] as? [[String: Any]])?.first?["company"] as? String == "Huawei Software Technologies Co., Ltd.")
            #expect((given["storage"] as? [String: Any])?["location"] as? String == "CN" && given["retention_days"] as? Int == 30)
            #expect((given["events"] as? [[String: Any]])?.map { $0["event"] as? String } == ["given", "renewed"])
            #expect((given["events"] as? [[String: Any]])?.last?["notice_version"] as? String == "2025-07")
            #expect(given["state"] as? String == "active")
            #expect((withdrawn["events"] as? [[String: Any]])?.map { $0["event"] as? String } == ["given", "withdrawn"])
            #expect(withdrawn["state"] as? String == "withdrawn")

            // The schema's own check fails a record missing a mandatory element.
            var broken = given
            broken["controller"] = nil
            #expect(Self.problems(broken, schema) == ["$: controller is missing"])
        }
    }
}
