/// AMap (Gaode) Web Service API v3 (`restapi.amap.com`): reverse geocoding and IP
/// location. AMap answers HTTP 200 with `status:"0"`, `info` and `infocode` for
/// every error, so does this simulator (an injected fault uses its status with
/// `10016 SERVER_IS_BUSY`).
/// - Both calls are `GET` with the `key` in the query: missing or wrong →
///   `INVALID_USER_KEY` 10001.
/// - `/v3/geocode/regeo`: `location=<lng>,<lat>` (longitude first, at most 6
///   decimals, lng in [-180,180], lat in [-90,90]) else `INVALID_PARAMS` 20000;
///   missing → `MISSING_REQUIRED_PARAMS` 20001; `extensions` must be `base` or
///   `all`. A `sig` is not checked (the adapter drops callers' `sig`), but a `sig`
///   that arrives is recorded like any other parameter.
/// - `/v3/ip`: `ip` must be dotted IPv4, else `INVALID_PARAMS`; without `ip` AMap
///   locates the caller, here loopback, answered as `局域网` with empty arrays.
///   A public IPv4 answers Beijing.
struct AMapBehavior: ProviderBehavior {
    let provider = "amap-location"
    let key: String

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/v3/geocode/regeo" || request.path == "/v3/ip" ? .api : .unknown
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        do throws(Refusal) {
            guard request.method == "GET" else { throw self.error("INVALID_REQUEST", "20003") }
            guard let query = request.queryParameters else { throw self.error("INVALID_PARAMS", "20000") }
            guard let key = query.first("key"), key == self.key else { throw self.error("INVALID_USER_KEY", "10001") }
            if let output = query.first("output"), output.lowercased() != "json" {
                throw self.error("INVALID_PARAMS", "20000")   // the simulator only speaks JSON
            }
            switch request.path {
            case "/v3/geocode/regeo": return try self.regeo(query)
            case "/v3/ip": return try self.ip(query)
            default: return .notFound
            }
        } catch {
            return error.response
        }
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        .json(["status": "0", "info": "SERVER_IS_BUSY", "infocode": "10016"], status: status)
    }

    private func error(_ info: String, _ code: String) -> Refusal {
        Refusal(.json(["status": "0", "info": .string(info), "infocode": .string(code)]))
    }

    private func regeo(_ query: [(name: String, value: String)]) throws(Refusal) -> SimulatorResponse {
        guard let location = query.first("location"), !location.isEmpty else {
            throw self.error("MISSING_REQUIRED_PARAMS", "20001")
        }
        let parts = location.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let lng = Self.coordinate(parts[0], limit: 180), let lat = Self.coordinate(parts[1], limit: 90) else {
            throw self.error("INVALID_PARAMS", "20000")
        }
        if let extensions = query.first("extensions"), extensions != "base", extensions != "all" {
            throw self.error("INVALID_PARAMS", "20000")
        }
        _ = (lng, lat)
        return .json([
            "status": "1", "info": "OK", "infocode": "10000",
            "regeocode": [
                "formatted_address": "北京市朝阳区望京街道望京SOHO",
                "addressComponent": [
                    "country": "中国", "province": "北京市", "city": [], "citycode": "010",
                    "district": "朝阳区", "adcode": "110105", "township": "望京街道", "towncode": "110105026000",
                    "streetNumber": ["street": "阜通东大街", "number": "6号", "location": .string(location),
                                     "direction": "西", "distance": "40.1"],
                ],
            ],
        ])
    }

    /// A decimal number with at most 6 fraction digits, |value| ≤ limit.
    static func coordinate(_ text: Substring, limit: Double) -> Double? {
        var digits = text
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        let pieces = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = pieces.first, !whole.isEmpty, whole.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        if pieces.count == 2 {
            let fraction = pieces[1]
            guard !fraction.isEmpty, fraction.count <= 6, fraction.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        }
        guard let value = Double(text), abs(value) <= limit else { return nil }
        return value
    }

    private func ip(_ query: [(name: String, value: String)]) throws(Refusal) -> SimulatorResponse {
        let address = query.first("ip") ?? "127.0.0.1"
        guard let octets = Self.ipv4(address) else { throw self.error("INVALID_PARAMS", "20000") }
        let isPrivate = octets[0] == 10 || octets[0] == 127 || (octets[0] == 192 && octets[1] == 168)
            || (octets[0] == 172 && (16...31).contains(octets[1]))
        if isPrivate {
            return .json(["status": "1", "info": "OK", "infocode": "10000",
                          "province": "局域网", "city": [], "adcode": [], "rectangle": []])
        }
        return .json([
            "status": "1", "info": "OK", "infocode": "10000",
            "province": "北京市", "city": "北京市", "adcode": "110000",
            "rectangle": "116.0119343,39.66127144;116.7829835,40.2164962",
        ])
    }

    /// Dotted-quad IPv4 (no leading zeros beyond a single 0).
    static func ipv4(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.utf8.allSatisfy({ (48...57).contains($0) }),
                  !(part.count > 1 && part.first == "0"), let value = Int(part), value <= 255
            else { return nil }
            octets.append(value)
        }
        return octets
    }
}
