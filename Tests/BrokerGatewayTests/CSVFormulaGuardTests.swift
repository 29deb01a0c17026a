import BrokerCurl
import BrokerService
import Foundation
import Testing

/// Issue 23 §6: the CSV guard judges Unicode scalars, not grapheme clusters. `=` followed by a
/// combining mark or a zero-width joiner is one Character that is not `=`, yet a spreadsheet reads
/// it as a formula; a quote or comma with a mark after it, or a CRLF, must still be quoted.
@Suite(.serialized) struct CSVFormulaGuardTests {
    static let formula = "=\u{301}HYPERLINK(\"https://evil.example\",\"x\")"
    static let joined = "=\u{200d}2+3"
    static let company = "Evil\"\u{301},\u{301} Inc\r\nnext"

    /// Through the compliance export: the published sharing list as CSV, its words from the contract.
    @Test func theExportNeutralisesFormulasBehindInvisibleMarks() async throws {
        let policy = try loadRepositoryPolicy(editing: ["contracts/huawei-push.yaml": { text in
            text.replacingOccurrences(of: #"en: "Huawei Push Kit""#, with: "en: \"=\\u0301HYPERLINK(\\\"https://evil.example\\\",\\\"x\\\")\"")
                .replacingOccurrences(of: #"en: "Sending order and service notifications to the app on Huawei phones""#,
                                      with: "en: \"=\\u200d2+3\"")
                .replacingOccurrences(of: #"en: "Huawei Software Technologies Co., Ltd.""#,
                                      with: "en: \"Evil\\\"\\u0301,\\u0301 Inc\\r\\nnext\"")
        }])
        #expect(policy.contracts["huawei-push"]?.name["en"] == Self.formula, "the contract edit took")
        #expect(policy.contracts["huawei-push"]?.scenario["en"] == Self.joined)
        try await withBroker(policy: policy) { broker in
            try await broker.grant("u1", provider: "huawei-push", purpose: AccountDeletionTests.push)
            #expect(try await AccountDeletionTests().push(broker, "u1", token: "T1").status == 200)
            let csv = try await broker.call("GET", "/v1/reports/sharing-list?format=published&lang=en", token: Broker.complianceToken,
                                            headers: [("Accept", "text/csv")])
            #expect(csv.status == 200, "\(csv.text)")
            let text = csv.text
            #expect(text.contains("\"'" + Self.formula.replacingOccurrences(of: "\"", with: "\"\"") + "\","), "\(text.debugDescription)")
            #expect(text.contains(",'" + Self.joined + ","), "\(text.debugDescription)")
            #expect(text.contains(",\"Evil\"\"\u{301},\u{301} Inc\r\nnext\","), "\(text.debugDescription)")
            // No cell starts with a bare formula character, whatever follows it.
            #expect(!text.unicodeScalars.split(separator: ",").contains { $0.first == "=" }, "\(text.debugDescription)")
        }
    }

    @Test func eachCellIsJudgedByItsFirstScalar() {
        #expect(CSVCell.escape(Self.joined) == "'" + Self.joined)
        #expect(CSVCell.escape("+\u{301}1") == "'+\u{301}1")
        #expect(CSVCell.escape("@\u{200d}SUM(A1)") == "'@\u{200d}SUM(A1)")
        #expect(CSVCell.escape("a\r\nb") == "\"a\r\nb\"", "a CRLF is one Character but two line-break scalars")
        #expect(CSVCell.escape("x\"\u{301}y") == "\"x\"\"\u{301}y\"")
        #expect(CSVCell.escape("é,\u{301}") == "\"é,\u{301}\"")
        #expect(CSVCell.escape("plain") == "plain")
    }
}
