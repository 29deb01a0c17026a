import Foundation

/// Tencent Cloud FaceID (人脸核身), API 3.0, version `2018-03-01`: every action is
/// `POST /` with a JSON body, the action in `X-TC-Action`, signed with
/// TC3-HMAC-SHA256.
///
/// Tencent answers HTTP 200 with `{"Response":{"Error":{"Code","Message"},"RequestId"}}`
/// for every error, so does this simulator (an injected fault uses its status with
/// `InternalError`). Checks, in order:
/// 1. `POST` with `Content-Type: application/json` (parameters allowed), else
///    `UnsupportedProtocol`; `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp` present
///    (`MissingParameter`); version `2018-03-01` (`NoSuchVersion`).
/// 2. `Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/faceid/tc3_request,
///    SignedHeaders=…, Signature=…` parses (`AuthFailure.InvalidAuthorization`);
///    the timestamp is within 5 minutes of now (`AuthFailure.SignatureExpire`); the
///    SecretId is known (`AuthFailure.SecretIdNotFound`); the date is the UTC date of
///    the timestamp, the service `faceid`, SignedHeaders include `content-type` and
///    `host`, and the signature recomputed over the request as received (`Host` as
///    sent, body bytes as sent) matches (`AuthFailure.SignatureFailure`).
/// 3. The body is a JSON object (`InvalidParameter`) with only the action's
///    parameters (`UnknownParameter`, as Tencent refuses undefined ones) and its
///    required ones (`MissingParameter`).
/// Actions: `IdCardVerification` (IdCard, Name) → `Result` `"0"` 姓名和身份证号一致,
/// or the non-error results `"-2"` (ID number fails length/check digit, GB 11643)
/// and `"-3"` (bad name); `ImageRecognitionV2` (IdCard, Name, ImageBase64 strict
/// base64 ≤ 3 MB decoded) → `Sim` 93.5, `Result` `Success`; `DetectAuth` (RuleId) →
/// `Url`, `BizToken`. With `Encryption` present, IdCard/Name are ciphertext and not
/// format-checked. Any other action → `InvalidAction`.
struct TencentFaceIDBehavior: ProviderBehavior {
    let provider = "tencent-faceid"
    /// Tencent Cloud API 3.0 answers `Content-Type: application/json`, no charset.
    let jsonContentType = "application/json"
    let secretID: String
    let secretKey: String
    let now: @Sendable () -> Date

    static let service = "faceid"
    static let version = "2018-03-01"
    static let maxClockSkew: Int64 = 300

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/" ? .api : .unknown
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        do throws(Refusal) {
            try self.authenticate(request)
            return try self.perform(request)
        } catch {
            return error.response
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        var response = Self.error("InternalError", "An internal error has occurred. Retry your request.")
        response.status = status
        return response
    }

    static func error(_ code: String, _ message: String) -> SimulatorResponse {
        .json(["Response": [
            "Error": ["Code": .string(code), "Message": .string(message)],
            "RequestId": .string(UUID().uuidString.lowercased()),
        ]])
    }

    private func refuse(_ code: String, _ message: String) -> Refusal {
        Refusal(Self.error(code, message))
    }

    // MARK: Signature

    struct Authorization: Equatable {
        var algorithm: String
        var secretID: String
        var date: String
        var service: String
        var terminator: String
        var signedHeaders: [String]
        var signature: String

        /// Parses `TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
        static func parse(_ header: String) -> Authorization? {
            let trimmed = header.trimmingCharacters(in: .whitespaces)
            guard let space = trimmed.firstIndex(of: " ") else { return nil }
            let algorithm = String(trimmed[..<space])
            var fields: [String: String] = [:]
            for part in trimmed[space...].split(separator: ",") {
                let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { return nil }
                fields[String(pair[0])] = String(pair[1])
            }
            guard let credential = fields["Credential"], let signed = fields["SignedHeaders"],
                  let signature = fields["Signature"], fields.count == 3
            else { return nil }
            let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard scope.count == 4, !scope[0].isEmpty else { return nil }
            return Authorization(
                algorithm: algorithm, secretID: scope[0], date: scope[1], service: scope[2], terminator: scope[3],
                signedHeaders: signed.split(separator: ";", omittingEmptySubsequences: false).map(String.init),
                signature: signature
            )
        }
    }

    private func authenticate(_ request: SimulatorRequest) throws(Refusal) {
        guard request.method == "POST" else {
            throw self.refuse("UnsupportedProtocol", "The simulator supports POST with a JSON body only.")
        }
        guard request.mediaType == "application/json" else {
            throw self.refuse("UnsupportedProtocol", "Content-Type must be application/json.")
        }
        guard let action = request.header("X-TC-Action"), !action.isEmpty else {
            throw self.refuse("MissingParameter", "The request is missing a required parameter `Action`.")
        }
        guard let version = request.header("X-TC-Version"), !version.isEmpty else {
            throw self.refuse("MissingParameter", "The request is missing a required parameter `Version`.")
        }
        guard version == Self.version else {
            throw self.refuse("NoSuchVersion", "The requested version `\(version)` of service `faceid` does not exist.")
        }
        guard let timestampText = request.header("X-TC-Timestamp"), !timestampText.isEmpty else {
            throw self.refuse("MissingParameter", "The request is missing a required parameter `Timestamp`.")
        }
        guard let timestamp = Int64(timestampText), timestamp > 0 else {
            throw self.refuse("InvalidParameter", "The parameter `Timestamp` is not an integer.")
        }
        guard let header = request.header("Authorization"), let auth = Authorization.parse(header),
              auth.algorithm == TC3Signature.algorithm
        else {
            throw self.refuse("AuthFailure.InvalidAuthorization",
                              "Authorization header must be `TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.")
        }
        let now = Int64(self.now().timeIntervalSince1970)
        guard abs(now - timestamp) <= Self.maxClockSkew else {
            throw self.refuse("AuthFailure.SignatureExpire",
                              "Signature expired. Timestamp \(timestamp) differs from server time \(now) by more than five minutes.")
        }
        guard auth.secretID == self.secretID else {
            throw self.refuse("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
        }
        guard auth.date == TC3Signature.utcDate(timestamp), auth.service == Self.service, auth.terminator == "tc3_request" else {
            throw self.refuse("AuthFailure.SignatureFailure",
                              "The provided credential scope does not match: expected \(TC3Signature.utcDate(timestamp))/faceid/tc3_request.")
        }
        guard auth.signedHeaders.contains("content-type"), auth.signedHeaders.contains("host"),
              auth.signedHeaders == auth.signedHeaders.sorted(), Set(auth.signedHeaders).count == auth.signedHeaders.count
        else {
            throw self.refuse("AuthFailure.SignatureFailure", "SignedHeaders must list content-type and host, sorted.")
        }
        var signed: [(name: String, value: String)] = []
        for name in auth.signedHeaders {
            guard let value = request.header(name) else {
                throw self.refuse("AuthFailure.SignatureFailure", "Signed header `\(name)` is missing from the request.")
            }
            signed.append((name, value))
        }
        let canonical = TC3Signature.canonicalRequest(method: "POST", headers: signed, body: request.body)
        let toSign = TC3Signature.stringToSign(timestamp: timestamp, service: Self.service, canonicalRequest: canonical)
        let expected = TC3Signature.signature(secretKey: self.secretKey, date: auth.date, service: Self.service, stringToSign: toSign)
        guard Self.constantTimeEqual(expected, auth.signature) else {
            throw self.refuse("AuthFailure.SignatureFailure",
                              "The provided credentials could not be validated. Please check your signature is correct.")
        }
    }

    private static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    // MARK: Actions

    private static let parameters: [String: (allowed: Set<String>, required: [String])] = [
        "IdCardVerification": (["IdCard", "Name", "Encryption"], ["IdCard", "Name"]),
        "ImageRecognitionV2": (["IdCard", "Name", "ImageBase64", "Optional", "Encryption", "Extra"],
                               ["IdCard", "Name", "ImageBase64"]),
        "DetectAuth": (["RuleId", "TerminalType", "IdCard", "Name", "RedirectUrl", "Extra", "ImageBase64",
                        "Encryption", "IntentionVerifyText", "IntentionQuestions", "IntentionActions", "Config"],
                       ["RuleId"]),
    ]

    private func perform(_ request: SimulatorRequest) throws(Refusal) -> SimulatorResponse {
        let action = request.header("X-TC-Action") ?? ""
        guard let spec = Self.parameters[action] else {
            throw self.refuse("InvalidAction", "The action `\(action)` does not exist.")
        }
        guard let body = try? JSONValue.parse(request.body), let members = body.objectMembers else {
            throw self.refuse("InvalidParameter", "The request body is not a JSON object.")
        }
        for (name, _) in members where !spec.allowed.contains(name) {
            throw self.refuse("UnknownParameter", "The parameter `\(name)` is not recognized.")
        }
        for name in spec.required where body[name] == nil {
            throw self.refuse("MissingParameter", "The request is missing a required parameter `\(name)`.")
        }
        for (name, value) in members where name != "Encryption" && name != "Config" && name != "IntentionQuestions"
            && name != "IntentionActions" && value.stringValue == nil
        {
            throw self.refuse("InvalidParameter", "The parameter `\(name)` must be a string.")
        }
        let encrypted = body["Encryption"] != nil
        let requestID = UUID().uuidString.lowercased()
        switch action {
        case "IdCardVerification":
            let (result, description) = self.verify(body, encrypted: encrypted)
            return .json(["Response": ["Result": .string(result), "Description": .string(description),
                                       "RequestId": .string(requestID)]])
        case "ImageRecognitionV2":
            let (result, _) = self.verify(body, encrypted: encrypted)
            guard result == "0" else { throw self.refuse("InvalidParameterValue", "IdCard or Name is malformed.") }
            guard let image = body["ImageBase64"]?.stringValue, let bytes = Base64.decode(image), !bytes.isEmpty else {
                throw self.refuse("FailedOperation.ImageDecodeFailed", "ImageBase64 is not valid base64.")
            }
            guard bytes.count <= 3 * 1024 * 1024 else {
                throw self.refuse("InvalidParameterValue", "The image is larger than 3 MB.")
            }
            return .json(["Response": ["Sim": 93.5, "Result": "Success", "Description": "成功",
                                       "RequestId": .string(requestID)]])
        default:
            guard let ruleID = body["RuleId"]?.stringValue, !ruleID.isEmpty else {
                throw self.refuse("InvalidParameterValue", "RuleId must be a non-empty string.")
            }
            let bizToken = UUID().uuidString
            return .json(["Response": ["Url": .string("https://faceid.qq.com/api/auth/index?token=\(bizToken)"),
                                       "BizToken": .string(bizToken), "RequestId": .string(requestID)]])
        }
    }

    /// IdCardVerification's result code for the name and ID number.
    private func verify(_ body: JSONValue, encrypted: Bool) -> (String, String) {
        if encrypted { return ("0", "姓名和身份证号一致") }
        guard let idCard = body["IdCard"]?.stringValue, Self.isValidIDNumber(idCard) else {
            return ("-2", "非法身份证号（长度、校验位等不正确）")
        }
        guard let name = body["Name"]?.stringValue, !name.isEmpty, name.count <= 64 else {
            return ("-3", "非法姓名（长度、格式等不正确）")
        }
        return ("0", "姓名和身份证号一致")
    }

    /// 18-character PRC resident ID number with a valid GB 11643-1999 check digit.
    static func isValidIDNumber(_ text: String) -> Bool {
        let chars = Array(text.uppercased().utf8)
        guard chars.count == 18, chars[0..<17].allSatisfy({ (48...57).contains($0) }) else { return false }
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
        let sum = zip(chars[0..<17], weights).reduce(0) { $0 + Int($1.0 - 48) * $1.1 }
        let check = Array("10X98765432".utf8)[sum % 11]
        return chars[17] == check
    }
}
