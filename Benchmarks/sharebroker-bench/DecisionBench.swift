import BrokerCore
import BrokerService
import Foundation

/// A decoder that hands back one body decoded in advance: isolates `evaluate` from parsing.
private struct PreparsedDecoder: PayloadDecoder {
    let body: any DecodedPayload
    func decodeBody(_ bytes: [UInt8], format: BodyFormat, limits: BodyLimits,
                    schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure> { .success(body) }
    func decodeQuery(_ query: String, limits: BodyLimits,
                     schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure> { .success(body) }
}

/// Decision throughput on a 20-field Huawei push body, with the repository's own policy.
func runDecisionBench() -> [String] {
    let loaded = PolicyLoader.load(adapters: "adapters", contracts: "contracts")
    guard let bundle = loaded.bundle else {
        return ["decision bench: policy invalid (run from the repository root): \(loaded.issues.map(\.description))"]
    }
    let tokens = (0..<10).map { "\"IQAAAACy0kYtAABqJ8ZyOvHgRt2tT\($0)\"" }.joined(separator: ",")
    let body = """
    {"validate_only":false,"message":{"token":[\(tokens)],\
    "notification":{"title":"Your parcel","body":"Arrives today between 14:00 and 16:00","image":"https://img.example.com/p.png"},\
    "android":{"ttl":"86400s","collapse_key":-1,"urgency":"HIGH","category":"EXPRESS",\
    "notification":{"title":"Your parcel","body":"Arrives today"}}}}
    """
    let now = Date()
    let caller = Caller(id: "bench", roles: [.share], providers: ["huawei-push"])
    let grant = Grant(id: "g1", subject: "u1", provider: "huawei-push", purpose: "essential.service.notifications.push",
                      grantedAt: now.addingTimeInterval(-3600))
    let context = SubjectContext(subject: Subject(id: "u1", birthDate: CalendarDay("1990-05-01")), grants: [grant])
    let request = ShareRequest(caller: caller, provider: "huawei-push",
                               target: .http(method: "POST", path: "/v1/10086/messages:send", query: nil),
                               contentType: "application/json", body: Array(body.utf8), subject: "u1", time: now)
    let engine = PolicyEngine(bundle: bundle)
    let strict = StrictPayloadDecoder()
    let first = engine.evaluate(request, context: context, decoder: strict)
    guard first.verdict == .allowed, let decoded = first.body else {
        return ["decision bench: unexpected decision \(first.verdict) \(first.code?.rawValue ?? "")"]
    }
    let fieldCount = first.fields.count
    let preparsed = PreparsedDecoder(body: decoded)

    var sink = 0
    let coreNs = measure(seconds: 1.0) {
        sink &+= engine.evaluate(request, context: context, decoder: preparsed).fields.count
    }
    let fullNs = measure(seconds: 1.0) {
        let decision = engine.evaluate(request, context: context, decoder: strict)
        sink &+= decision.forwarded(.body)?.count ?? 0
    }
    precondition(sink > 0)
    let checksPerSecond = Double(fieldCount) / coreNs * 1e9
    let fullChecksPerSecond = Double(fieldCount) / fullNs * 1e9
    return [
        "Decision core — huawei-push send, \(fieldCount) fields (\(body.utf8.count) B), one grant, all allowed",
        "  evaluate (fields pre-parsed)          \(padded(fixed(coreNs / 1000, 2) + " µs/decision", 22))  \(grouped(checksPerSecond)) field checks/s",
        "  parse + evaluate + re-serialize       \(padded(fixed(fullNs / 1000, 2) + " µs/decision", 22))  \(grouped(fullChecksPerSecond)) field checks/s",
        "  target: ≥ 1,000,000 field checks/s on one core → \(checksPerSecond >= 1_000_000 ? "met" : "NOT met")",
    ]
}
