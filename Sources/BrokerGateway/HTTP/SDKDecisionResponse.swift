import BrokerCore
import HTTPTypes

/// The answer to `POST /v1/decisions`: the decision, per-field actions and the payload the SDK may send.
enum SDKDecisionResponse {
    static func answer(shareID: String, decision: ShareDecision, payload: [UInt8]) -> (HTTPResponse, [UInt8]) {
        // Written directly, keys in byte order (as clients have always seen them): no `JSONSerialization`.
        var members: [(String, Problem.Member)] = [
            ("share_id", .string(shareID)),
            ("decision", .string(decision.verdict.rawValue)),
            ("provider", .string(decision.provider)),
            ("fields", .objects(decision.fields.map { field in
                var entry: [String: Problem.Member] = ["path": .string(field.path.description),
                                                       "location": .string(field.location.rawValue),
                                                       "action": .string(field.action.rawValue)]
                if let category = field.category { entry["category"] = .string(category) }
                if let reason = field.reason { entry["reason"] = .string(reason.rawValue) }
                if let from = field.minimisedFrom {
                    // Sent in its coarser form: what it was declared as, and why that was not allowed.
                    entry["minimised_from"] = .string(from.category)
                    entry["reason"] = .string(from.reason.rawValue)
                }
                return entry
            })),
        ]
        if let operation = decision.operation { members.append(("operation", .string(operation))) }
        if let purpose = decision.purpose { members.append(("purpose", .string(purpose))) }
        if let version = decision.contractVersion { members.append(("contract_version", .string(version))) }
        var data: [UInt8] = []
        data.reserveCapacity(256 + 96 * decision.fields.count + payload.count)
        Problem.Member.write(object: members, to: &data)
        // Splice the payload in as raw JSON: it is already the broker's own strict serialisation.
        if !payload.isEmpty, data.last == UInt8(ascii: "}") {
            data.removeLast()
            data.append(contentsOf: Array(",\"payload\":".utf8) + payload + [UInt8(ascii: "}")])
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.shareID] = shareID
        headers[.shareDecision] = decision.verdict.rawValue
        return (HTTPResponse(status: .ok, headerFields: headers), data)
    }
}
