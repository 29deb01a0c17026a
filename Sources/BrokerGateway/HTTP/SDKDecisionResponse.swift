import BrokerCore
import Foundation
import HTTPTypes

/// The answer to `POST /v1/decisions`: the decision, per-field actions and the payload the SDK may send.
enum SDKDecisionResponse {
    static func answer(shareID: String, decision: ShareDecision, payload: [UInt8]) -> (HTTPResponse, [UInt8]) {
        var object: [String: Any] = [
            "share_id": shareID,
            "decision": decision.verdict.rawValue,
            "provider": decision.provider,
            "fields": decision.fields.map { field -> [String: Any] in
                var entry: [String: Any] = ["path": field.path.description, "location": field.location.rawValue,
                                            "action": field.action.rawValue]
                if let category = field.category { entry["category"] = category }
                if let reason = field.reason { entry["reason"] = reason.rawValue }
                if let from = field.minimisedFrom {
                    // Sent in its coarser form: what it was declared as, and why that was not allowed.
                    entry["minimised_from"] = from.category
                    entry["reason"] = from.reason.rawValue
                }
                return entry
            },
        ]
        if let operation = decision.operation { object["operation"] = operation }
        if let purpose = decision.purpose { object["purpose"] = purpose }
        if let version = decision.contractVersion { object["contract_version"] = version }
        var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        // Splice the payload in as raw JSON: it is already the broker's own strict serialisation.
        if !payload.isEmpty, data.last == UInt8(ascii: "}") {
            data.removeLast()
            data.append(contentsOf: Array(",\"payload\":".utf8) + payload + [UInt8(ascii: "}")])
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.shareID] = shareID
        headers[.shareDecision] = decision.verdict.rawValue
        return (HTTPResponse(status: .ok, headerFields: headers), Array(data))
    }
}
