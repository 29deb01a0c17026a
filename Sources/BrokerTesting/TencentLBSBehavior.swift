@preconcurrency import Crypto
import BrokerFields
import Foundation

/// Tencent Location Service WebService API (`apis.map.qq.com`) with the key's SN check on:
/// reverse geocoding and IP location. Tencent answers HTTP 200 with a `status` (0: success) and
/// `message` for every outcome, so does this simulator (an injected fault uses its status with
/// status 500). Checks, in order:
/// - GET only (else 400 "请求方法错误" [unverified: the code]);
/// - `key` is the app's (else 311 "key格式错误");
/// - `sig` = lower-case hex md5(path as requested + "?" + every other parameter sorted by name as
///   `name=value` with raw, decoded values, joined by `&` + the secret key); missing or wrong →
///   111 "签名验证失败" [unverified: the code];
/// - `/ws/geocoder/v1` (with or without the trailing `/`): `location=<lat>,<lng>` — **latitude
///   first**, lat in [-90, 90], lng in [-180, 180] — else 310 "请求参数信息有误"; `get_poi` 0 or 1;
///   → `result.location`, `address`, `ad_info`;
/// - `/ws/location/v1/ip`: `ip` a dotted IPv4 (else 310) → `result.ip`, `location`, `ad_info`.
struct TencentLBSBehavior: ProviderBehavior {
    let provider = "tencent-lbs"
    let key: String
    let secretKey: String

    static let geocoderPaths: Set<String> = ["/ws/geocoder/v1", "/ws/geocoder/v1/"]
    static let ipPath = "/ws/location/v1/ip"

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        Self.geocoderPaths.contains(request.path) || request.path == Self.ipPath ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        Self.refuse(500, "服务器内部错误", status: status)
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "GET" else { return Self.refuse(400, "请求方法错误") }
        guard let query = request.queryParameters else { return Self.refuse(310, "请求参数信息有误") }
        guard query.first("key") == key else { return Self.refuse(311, "key格式错误") }
        let signed = query.filter { $0.name != "sig" }
        let sorted = signed.enumerated().sorted { ($0.element.name, $0.offset) < ($1.element.name, $1.offset) }.map(\.element)
        let text = request.path + "?" + sorted.map { $0.name + "=" + $0.value }.joined(separator: "&") + secretKey
        guard query.first("sig") == Hex.encode(Insecure.MD5.hash(data: Array(text.utf8))) else {
            return Self.refuse(111, "签名验证失败")
        }
        if request.path == Self.ipPath {
            guard let ip = query.first("ip"), AMapBehavior.ipv4(ip) != nil else { return Self.refuse(310, "请求参数信息有误") }
            return .json(["status": 0, "message": "Success", "request_id": .string(RandomText.hex(bytes: 16)),
                          "result": ["ip": .string(ip), "location": ["lat": 39.90469, "lng": 116.40717],
                                     "ad_info": ["nation": "中国", "province": "北京市", "city": "北京市", "district": "", "adcode": 110000]]])
        }
        guard let location = query.first("location") else { return Self.refuse(310, "请求参数信息有误") }
        let parts = location.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let lat = AMapBehavior.coordinate(parts[0], limit: 90), let lng = AMapBehavior.coordinate(parts[1], limit: 180)
        else { return Self.refuse(310, "请求参数信息有误") }
        if let poi = query.first("get_poi"), poi != "0", poi != "1" { return Self.refuse(310, "请求参数信息有误") }
        return .json([
            "status": 0, "message": "query ok", "request_id": .string(RandomText.hex(bytes: 16)),
            "result": [
                "location": ["lat": .double(lat), "lng": .double(lng)],
                "address": "北京市朝阳区阜通东大街6号",
                "ad_info": ["nation_code": "156", "adcode": "110105", "city_code": "156110000", "name": "中国,北京市,北京市,朝阳区",
                            "nation": "中国", "province": "北京市", "city": "北京市", "district": "朝阳区"],
            ],
        ])
    }

    static func refuse(_ status: Int64, _ message: String, status http: Int = 200) -> SimulatorResponse {
        .json(["status": .int(status), "message": .string(message), "request_id": .string(RandomText.hex(bytes: 16))], status: http)
    }
}
