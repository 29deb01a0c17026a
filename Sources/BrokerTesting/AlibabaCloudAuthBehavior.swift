@preconcurrency import Crypto
import BrokerFields
import Foundation

/// Alibaba Cloud ID Verification (实人认证, `cloudauth.aliyuncs.com`, API version 2019-03-07),
/// the two-element check `Id2MetaVerify` (name + ID number), an RPC-style API signed with
/// ACS3-HMAC-SHA256. Alibaba answers errors with an HTTP status and
/// `{"RequestId","HostId","Code","Message","Recommend"}`, so does this simulator. Checks, in order:
/// - POST (GET is allowed by the gateway too), `x-acs-action: Id2MetaVerify` or (V1) the `Action`
///   parameter (else 400 `InvalidAction.NotFound`), `x-acs-version` or `Version` `2019-03-07` (else
///   400 `InvalidVersion`);
/// - a V1 signature when the parameters have `Signature` (what aliyun-python-sdk-core sends):
///   `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `Format` JSON or XML, the `AccessKeyId`
///   known (404 `InvalidAccessKeyId.NotFound`), `Timestamp` within 15 minutes (400
///   `InvalidTimeStamp.Expired`), the nonce unused (400 `SignatureNonceUsed`), and the signature
///   recomputed over every query and form parameter but `Signature` (400 `SignatureDoesNotMatch`:
///   one made with another secret is refused);
/// - otherwise `Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=…,Signature=…`:
///   the key id is known (else 404 `InvalidAccessKeyId.NotFound`), `x-acs-date` within 15 minutes
///   of now (400 `InvalidTimeStamp.Expired`), the nonce not seen before (400
///   `SignatureNonceUsed`), `x-acs-content-sha256` the body's hash and the signature recomputed
///   over the request as received, with `host`, `x-acs-action`, `x-acs-content-sha256`,
///   `x-acs-date`, `x-acs-signature-nonce` and `x-acs-version` among the signed headers (else 400
///   `IncompleteSignature` / `SignatureDoesNotMatch`);
/// - the parameters (query, or a form body; the V1 common parameters aside): `ParamType` `normal`,
///   `UserName` and `IdentifyNum` required (400 `MissingParameter`), any other → 400
///   `InvalidParameter` [unverified: Alibaba may ignore unknown ones];
/// → HTTP 200 `{"RequestId","Code":"200","Message":"success","ResultObject":{"BizCode":"1"}}`
/// (1: consistent), `"3"` (no record) for an ID number that fails GB 11643.
final class AlibabaCloudAuthBehavior: ProviderBehavior {
    let provider = "alibaba-cloudauth"
    let jsonContentType = "application/json;charset=utf-8"

    private let accessKeyID: String
    private let accessKeySecret: String
    private let now: @Sendable () -> Date
    private let nonces = Locked(Set<String>())

    init(accessKeyID: String, accessKeySecret: String, now: @escaping @Sendable () -> Date) {
        self.accessKeyID = accessKeyID; self.accessKeySecret = accessKeySecret; self.now = now
    }

    func route(_ request: SimulatorRequest) -> SimulatorRoute { request.path == "/" ? .api : .unknown }

    func faultResponse(status: Int) -> SimulatorResponse { Self.error(status, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.") }

    static func error(_ status: Int, _ code: String, _ message: String) -> SimulatorResponse {
        .json(["RequestId": .string(UUID().uuidString), "HostId": "cloudauth.aliyuncs.com", "Code": .string(code),
               "Message": .string(message), "Recommend": .string("https://api.aliyun.com/troubleshoot?q=\(code)")], status: status)
    }

    /// The V1 signature's common parameters.
    static let v1Parameters: Set<String> = ["Version", "Action", "Format", "RegionId", "Timestamp", "SignatureMethod", "SignatureType",
                                            "SignatureVersion", "SignatureNonce", "AccessKeyId", "Signature"]

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "POST" || request.method == "GET" else { return Self.error(400, "UnsupportedHTTPMethod", "This http method is not supported.") }
        var parameters = request.queryParameters ?? []
        if !request.body.isEmpty {
            guard request.mediaType == "application/x-www-form-urlencoded", let form = request.formParameters else {
                return Self.error(400, "InvalidParameter", "The request body is not a form.")
            }
            parameters += form
        }
        let signedV1 = parameters.first("Signature") != nil
        guard (signedV1 ? parameters.first("Action") : request.header("x-acs-action")) == "Id2MetaVerify" else {
            return Self.error(400, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        }
        guard (signedV1 ? parameters.first("Version") : request.header("x-acs-version")) == "2019-03-07" else {
            return Self.error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        }
        if let refusal = signedV1 ? authenticateV1(request, parameters) : authenticate(request) { return refusal }
        if signedV1 { parameters.removeAll { Self.v1Parameters.contains($0.name) } }
        if let unknown = parameters.first(where: { !["ParamType", "UserName", "IdentifyNum"].contains($0.name) }) {
            return Self.error(400, "InvalidParameter", "The parameter \(unknown.name) is not valid.")
        }
        for name in ["ParamType", "UserName", "IdentifyNum"] {
            guard let value = parameters.first(name), !value.isEmpty else {
                return Self.error(400, "MissingParameter", "The input parameter \(name) that is mandatory for processing this request is not supplied.")
            }
        }
        guard parameters.first("ParamType") == "normal" else { return Self.error(400, "InvalidParameter", "ParamType must be normal.") }
        let known = TencentFaceIDBehavior.isValidIDNumber(parameters.first("IdentifyNum") ?? "")
        return .json(["RequestId": .string(UUID().uuidString), "Code": "200", "Message": "success",
                      "ResultObject": ["BizCode": .string(known ? "1" : "3")]])
    }

    /// The V1 (HMAC-SHA1) signature, as Alibaba's RPC gateway checks it.
    private func authenticateV1(_ request: SimulatorRequest, _ parameters: [(name: String, value: String)]) -> SimulatorResponse? {
        guard parameters.first("SignatureMethod") == "HMAC-SHA1", parameters.first("SignatureVersion") == "1.0" else {
            return Self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        }
        guard ["JSON", "XML", nil].contains(parameters.first("Format")) else {
            return Self.error(400, "InvalidParameter", "Specified parameter Format is not valid.")
        }
        guard parameters.first("AccessKeyId") == accessKeyID else {
            return Self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        }
        let formatter = ISO8601DateFormatter()
        guard let text = parameters.first("Timestamp"), let date = formatter.date(from: text), abs(date.timeIntervalSince(now())) <= 15 * 60 else {
            return Self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        }
        let canonical = parameters.filter { $0.name != "Signature" }.map { (Self.encode($0.name), Self.encode($0.value)) }
            .sorted { $0.0 < $1.0 }.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
        let toSign = request.method + "&%2F&" + Self.encode(canonical)
        let expected = Data(HMAC<Insecure.SHA1>.authenticationCode(for: Array(toSign.utf8),
                                                                    using: SymmetricKey(data: Array((accessKeySecret + "&").utf8)))).base64EncodedString()
        guard parameters.first("Signature") == expected else {
            return Self.error(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        }
        guard let nonce = parameters.first("SignatureNonce"), nonces.withLock({ $0.insert(nonce).inserted }) else {
            return Self.error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        }
        return nil
    }

    private func authenticate(_ request: SimulatorRequest) -> SimulatorResponse? {
        let prefix = "ACS3-HMAC-SHA256 "
        guard let authorization = request.header("Authorization"), authorization.hasPrefix(prefix) else {
            return Self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        }
        var parts: [String: String] = [:]
        for part in authorization.dropFirst(prefix.count).split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { parts[pair[0].trimmingCharacters(in: .whitespaces)] = pair[1] }
        }
        guard let credential = parts["Credential"], let signedList = parts["SignedHeaders"], let signature = parts["Signature"] else {
            return Self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        }
        guard credential == accessKeyID else { return Self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.") }
        let signed = signedList.split(separator: ";").map(String.init)
        for name in ["host", "x-acs-action", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"]
        where !signed.contains(name) {
            return Self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: \(name) is not signed.")
        }
        let formatter = ISO8601DateFormatter()
        guard let dateText = request.header("x-acs-date"), let date = formatter.date(from: dateText),
              abs(date.timeIntervalSince(now())) <= 15 * 60 else {
            return Self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        }
        guard request.header("x-acs-content-sha256") == Hex.encode(SHA256.hash(data: request.body)) else {
            return Self.error(400, "SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the body.")
        }
        var headerLines: [String] = []
        for name in signed.sorted() {
            guard let value = name == "host" ? request.header("Host") : request.header(name) else {
                return Self.error(400, "IncompleteSignature", "Signed header \(name) is missing.")
            }
            headerLines.append(name + ":" + value.trimmingCharacters(in: .whitespaces) + "\n")
        }
        let query = (request.queryParameters ?? []).map { (Self.encode($0.name), Self.encode($0.value)) }
            .sorted { $0.0 < $1.0 }.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
        let canonical = [request.method, request.path, query, headerLines.joined(), signed.joined(separator: ";"),
                         Hex.encode(SHA256.hash(data: request.body))].joined(separator: "\n")
        let toSign = "ACS3-HMAC-SHA256\n" + Hex.encode(SHA256.hash(data: Array(canonical.utf8)))
        let expected = Hex.encode(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: SymmetricKey(data: Array(accessKeySecret.utf8))))
        guard signature == expected else {
            return Self.error(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        }
        guard let nonce = request.header("x-acs-signature-nonce"), nonces.withLock({ $0.insert(nonce).inserted }) else {
            return Self.error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        }
        return nil
    }

    /// RFC 3986 percent-encoding: only `A–Z a–z 0–9 - _ . ~` stay as they are.
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(byte))
            default: out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}
