import Foundation

/// Xiaomi MiPush server API (`api.xmpush.xiaomi.com`): sending to registration ids and aliases.
///
/// Xiaomi answers HTTP 200 with `result` and `code` in the body for every outcome, so does this
/// simulator (an injected fault uses its status with `result:"error"`, code 10003). Checks, in
/// order, for `POST /v3/message/regid` and `POST /v3/message/alias`:
/// - the method is POST and the body `application/x-www-form-urlencoded` (else code 10001
///   "bad request" [unverified: the code]);
/// - `Authorization: key=<app secret>`, the word `key` in lower case as Xiaomi requires; missing
///   or wrong → code 21301 "Invalid application secret" [unverified: the code and text];
/// - `restricted_package_name` and `description` are required (a notification needs its text,
///   so a consent strip that removes it is refused, as Xiaomi refuses it), `registration_id`
///   (regid) or `alias` (alias) non-empty → else code 10017 "missing parameter" [unverified];
///   `pass_through` is 0 or 1, `notify_type` and `time_to_live` integers;
/// → `{"result":"ok","code":0,"data":{"id":"scm…"},"description":"成功","info":"Received push
///   messages for N REGID","trace_id"}`.
struct XiaomiPushBehavior: ProviderBehavior {
    let provider = "xiaomi-push"
    let appSecret: String

    static let paths = ["/v3/message/regid": "registration_id", "/v3/message/alias": "alias"]

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        Self.paths[request.path] != nil ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        Self.refuse(10003, "server error", status: status)
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard let target = Self.paths[request.path] else { return .notFound }
        guard request.method == "POST", request.mediaType == "application/x-www-form-urlencoded",
              let form = request.formParameters else { return Self.refuse(10001, "bad request") }
        guard request.header("Authorization") == "key=" + appSecret else {
            return Self.refuse(21301, "Invalid application secret")
        }
        for name in [target, "restricted_package_name", "description"] {
            guard let value = form.first(name), !value.isEmpty else { return Self.refuse(10017, "missing parameter: \(name)") }
        }
        if let value = form.first("pass_through"), value != "0", value != "1" { return Self.refuse(10017, "invalid parameter: pass_through") }
        for name in ["notify_type", "time_to_live", "notify_id"] {
            if let value = form.first(name), Int(value) == nil { return Self.refuse(10017, "invalid parameter: \(name)") }
        }
        let count = form.first(target)?.split(separator: ",").count ?? 0
        return .json([
            "result": "ok", "trace_id": .string("Xcm" + RandomText.alphanumeric(21)), "code": 0,
            "data": ["id": .string("scm" + RandomText.alphanumeric(21))], "description": "成功",
            "info": .string("Received push messages for \(count) \(target == "alias" ? "ALIAS" : "REGID")"),
        ])
    }

    static func refuse(_ code: Int64, _ reason: String, status: Int = 200) -> SimulatorResponse {
        .json(["result": "error", "reason": .string(reason), "trace_id": .string("Xcm" + RandomText.alphanumeric(21)),
               "code": .int(code), "description": "失败"], status: status)
    }
}
