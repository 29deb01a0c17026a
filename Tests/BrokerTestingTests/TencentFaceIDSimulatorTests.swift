@testable import BrokerTesting
import Foundation
import Testing

@Suite struct TencentFaceIDSimulatorTests {
    static let idCard = "11010519491231002X"   // valid GB 11643 check digit

    /// Signs like the broker must: Host and Content-Type exactly as sent.
    static func call(_ sim: ProviderSimulator, _ creds: SimulatorCredentials, action: String, body: String,
                     secretKey: String? = nil, secretID: String? = nil, timestamp: Int64? = nil,
                     version: String = "2018-03-01", tamper: ((inout [UInt8]) -> Void)? = nil) async throws -> SimulatorReply {
        let host = "127.0.0.1:\(sim.port)"
        let contentType = "application/json; charset=utf-8"
        let ts = timestamp ?? Int64(Date().timeIntervalSince1970)
        var bytes = Array(body.utf8)
        let authorization = TC3Signature.authorization(
            secretID: secretID ?? creds.tencentSecretID, secretKey: secretKey ?? creds.tencentSecretKey, service: "faceid",
            timestamp: ts, headers: [("Content-Type", contentType), ("Host", host)], body: bytes)
        tamper?(&bytes)
        return try await SimulatorHTTP.send(sim, .post, "/", headers: [
            ("Authorization", authorization), ("Content-Type", contentType), ("X-TC-Action", action),
            ("X-TC-Version", version), ("X-TC-Timestamp", String(ts)),
        ], body: bytes, host: host)
    }

    static func errorCode(_ reply: SimulatorReply) -> String? {
        reply["Response"]?["Error"]?["Code"]?.stringValue
    }

    @Test func goodActionsSucceedAndAreRecordedExactly() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("tencent-faceid")
            let body = #"{"IdCard":"\#(Self.idCard)","Name":"张三"}"#
            let verify = try await Self.call(sim, creds, action: "IdCardVerification", body: body)
            #expect(verify.status == 200)
            #expect(Self.errorCode(verify) == nil)
            #expect(verify["Response"]?["Result"] == "0")
            #expect(verify["Response"]?["Description"] == "姓名和身份证号一致")
            #expect(verify["Response"]?["RequestId"]?.stringValue?.isEmpty == false)
            let recorded = try #require(sim.requests().first)
            #expect(recorded.body == Array(body.utf8))
            #expect(recorded.header("X-TC-Action") == "IdCardVerification")

            let image = Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).base64EncodedString()
            let v2 = try await Self.call(sim, creds, action: "ImageRecognitionV2",
                                         body: #"{"IdCard":"\#(Self.idCard)","Name":"张三","ImageBase64":"\#(image)"}"#)
            #expect(v2["Response"]?["Result"] == "Success")
            #expect(v2["Response"]?["Sim"] == 93.5)

            let detect = try await Self.call(sim, creds, action: "DetectAuth", body: #"{"RuleId":"1","RedirectUrl":"https://example.com"}"#)
            #expect(detect["Response"]?["Url"]?.stringValue?.hasPrefix("https://") == true)
            #expect(detect["Response"]?["BizToken"]?.stringValue?.isEmpty == false)
            #expect(sim.requests().count == 3)
        }
    }

    @Test func oneChangedBodyByteFailsTheSignature() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let reply = try await Self.call(sims.simulator("tencent-faceid"), creds, action: "IdCardVerification",
                                            body: #"{"IdCard":"\#(Self.idCard)","Name":"张三"}"#,
                                            tamper: { $0[3] ^= 0x01 })
            #expect(reply.status == 200)
            #expect(Self.errorCode(reply) == "AuthFailure.SignatureFailure")
            #expect(reply["Response"]?["Result"] == nil)
        }
    }

    @Test func wrongSecretsAndStaleTimestampsAreRefused() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("tencent-faceid")
            let body = #"{"IdCard":"\#(Self.idCard)","Name":"张三"}"#
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification", body: body, secretKey: "wrong"))
                == "AuthFailure.SignatureFailure")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification", body: body, secretID: "AKIDother"))
                == "AuthFailure.SecretIdNotFound")
            let stale = Int64(Date().timeIntervalSince1970) - 400
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification", body: body, timestamp: stale))
                == "AuthFailure.SignatureExpire")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification", body: body, version: "2017-03-12"))
                == "NoSuchVersion")
            // Signed for a different Host than the one sent.
            let ts = Int64(Date().timeIntervalSince1970)
            let auth = TC3Signature.authorization(secretID: creds.tencentSecretID, secretKey: creds.tencentSecretKey, service: "faceid",
                                                  timestamp: ts, headers: [("Content-Type", "application/json"),
                                                                           ("Host", "faceid.tencentcloudapi.com")],
                                                  body: Array(body.utf8))
            let wrongHost = try await SimulatorHTTP.send(sim, .post, "/", headers: [
                ("Authorization", auth), ("Content-Type", "application/json"), ("X-TC-Action", "IdCardVerification"),
                ("X-TC-Version", "2018-03-01"), ("X-TC-Timestamp", String(ts)),
            ], body: Array(body.utf8))
            #expect(Self.errorCode(wrongHost) == "AuthFailure.SignatureFailure")
            let unsigned = try await SimulatorHTTP.send(sim, .post, "/", headers: [
                ("Content-Type", "application/json"), ("X-TC-Action", "IdCardVerification"),
                ("X-TC-Version", "2018-03-01"), ("X-TC-Timestamp", String(ts)),
            ], body: Array(body.utf8))
            #expect(Self.errorCode(unsigned) == "AuthFailure.InvalidAuthorization")
        }
    }

    @Test func parametersAreCheckedPerAction() async throws {
        let creds = SimulatorCredentials.random()
        try await withSimulators(credentials: creds) { sims in
            let sim = sims.simulator("tencent-faceid")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification", body: #"{"Name":"张三"}"#))
                == "MissingParameter")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "IdCardVerification",
                                                       body: #"{"IdCard":"\#(Self.idCard)","Name":"张三","Phone":"1"}"#))
                == "UnknownParameter")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "DescribeInstances", body: "{}")) == "InvalidAction")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "DetectAuth", body: "[1]")) == "InvalidParameter")
            let badID = try await Self.call(sim, creds, action: "IdCardVerification", body: #"{"IdCard":"110105194912310021","Name":"张三"}"#)
            #expect(Self.errorCode(badID) == nil)
            #expect(badID["Response"]?["Result"] == "-2")
            #expect(Self.errorCode(try await Self.call(sim, creds, action: "ImageRecognitionV2",
                                                       body: #"{"IdCard":"\#(Self.idCard)","Name":"张三","ImageBase64":"%%%"}"#))
                == "FailedOperation.ImageDecodeFailed")
        }
    }
}
