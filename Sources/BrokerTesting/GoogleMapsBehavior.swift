/// Google Maps Platform Geocoding API, reverse geocoding (`maps.googleapis.com`).
///
/// `GET /maps/api/geocode/json?latlng=<lat>,<lng>&key=<API key>` (latitude first). Google answers
/// HTTP 200 with a `status` for every outcome, so does this simulator (an injected fault uses its
/// HTTP status with `UNKNOWN_ERROR`):
/// - not GET → 405 (Google's front end), a missing or wrong `key` → `REQUEST_DENIED` with
///   `error_message` "The provided API key is invalid.";
/// - no `latlng` (and no `address`, `components` or `place_id`) → `INVALID_REQUEST`; a `latlng`
///   that is not two decimal numbers in range → `INVALID_REQUEST` "Invalid request. Invalid
///   'latlng' parameter.";
/// - `language` (a BCP 47 tag), `result_type` and `location_type` (`|`-separated) are accepted;
///   any other parameter is ignored, as Google ignores unknown ones;
/// - otherwise `OK` with one result: `formatted_address`, `address_components`, `geometry`
///   (the location as given, `location_type` `ROOFTOP`), `place_id`, `types`.
struct GoogleMapsBehavior: ProviderBehavior {
    let provider = "google-maps"
    let key: String
    let jsonContentType = "application/json; charset=UTF-8"

    func route(_ request: SimulatorRequest) -> SimulatorRoute {
        request.path == "/maps/api/geocode/json" ? .api : .unknown
    }

    func faultResponse(status: Int) -> SimulatorResponse {
        .json(["results": [], "status": "UNKNOWN_ERROR", "error_message": "The server encountered a temporary error."],
              status: status)
    }

    func handle(_ request: SimulatorRequest) -> SimulatorResponse {
        guard request.method == "GET" else {
            return .json(["error_message": "Method not allowed", "results": [], "status": "INVALID_REQUEST"], status: 405)
        }
        let query = request.queryParameters ?? []
        guard let key = query.first("key"), key == self.key else {
            return Self.refuse("REQUEST_DENIED", "The provided API key is invalid.")
        }
        guard let latlng = query.first("latlng") else {
            return Self.refuse("INVALID_REQUEST", "Invalid request. Missing the 'address', 'components', 'latlng' or 'place_id' parameter.")
        }
        let parts = latlng.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, let lat = Double(parts[0].trimmingCharacters(in: .whitespaces)), abs(lat) <= 90,
              let lng = Double(parts[1].trimmingCharacters(in: .whitespaces)), abs(lng) <= 180,
              parts.allSatisfy({ $0.allSatisfy { "0123456789.-+ ".contains($0) } })
        else { return Self.refuse("INVALID_REQUEST", "Invalid request. Invalid 'latlng' parameter.") }
        return .json([
            "plus_code": ["compound_code": "W2R3+X4 Beijing, China", "global_code": "8PFRW2R3+X4"],
            "results": [[
                "address_components": [
                    ["long_name": "Chaoyang", "short_name": "Chaoyang", "types": ["political", "sublocality", "sublocality_level_1"]],
                    ["long_name": "Beijing", "short_name": "Beijing", "types": ["locality", "political"]],
                    ["long_name": "China", "short_name": "CN", "types": ["country", "political"]],
                ],
                "formatted_address": "Chaoyang, Beijing, China",
                "geometry": ["location": ["lat": .double(lat), "lng": .double(lng)], "location_type": "ROOFTOP"],
                "place_id": "ChIJ2eUgeAK6j4ARbn5u_wAGqWA",
                "types": ["street_address"],
            ]],
            "status": "OK",
        ])
    }

    static func refuse(_ status: String, _ message: String) -> SimulatorResponse {
        .json(["error_message": .string(message), "results": [], "status": .string(status)])
    }
}
