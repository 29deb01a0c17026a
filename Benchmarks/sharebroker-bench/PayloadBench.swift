import BrokerFields
import BrokerPayload
import Foundation

/// Payload codec benchmark: strict parse + flatten + strip one field + re-serialise with
/// BrokerPayload (json-c), against Foundation `JSONSerialization` parse + remove the same
/// key + serialise, on the same bytes. Returns printable lines.
func runPayloadBench() -> [String] {
    var lines = ["payload: ns/op, strip message.notification.title (json-c vs Foundation JSONSerialization)"]
    let strip: Set<FieldPath> = [FieldPath(keys: "message", "notification", "title")]
    for (label, body) in [("small", payloadBenchBody(tokens: 1, dataEntries: 0)),
                          ("4 KiB", payloadBenchBody(tokens: 40, dataEntries: 12)),
                          ("64 KiB", payloadBenchBody(tokens: 600, dataEntries: 240))] {
        // Sanity: both paths accept the body and really remove the field.
        let check = try! JSONBody(body, limits: PayloadLimits()).serialized(removing: strip)
        precondition(!String(decoding: check, as: UTF8.self).contains("\"title\""))

        let brokerNs = payloadBenchMeasure {
            do throws(PayloadError) {
                let parsed = try JSONBody(body, limits: PayloadLimits())
                return parsed.fields.count &+ parsed.serialized(removing: strip).count
            } catch {
                fatalError("bench body rejected: \(error.message)")
            }
        }
        let data = Data(body)
        let foundationNs = payloadBenchMeasure {
            guard var root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  var message = root["message"] as? [String: Any],
                  var notification = message["notification"] as? [String: Any] else {
                fatalError("Foundation rejected the bench body")
            }
            notification.removeValue(forKey: "title")
            message["notification"] = notification
            root["message"] = message
            return (try? JSONSerialization.data(withJSONObject: root))?.count ?? 0
        }
        lines.append("  \(label) (\(body.count) B): json-c \(payloadBenchFormat(brokerNs)) ns/op"
                     + " | Foundation \(payloadBenchFormat(foundationNs)) ns/op"
                     + " | Foundation/json-c \((foundationNs / brokerNs * 10).rounded() / 10)x")
    }
    return lines
}

/// A push message shaped like the Huawei/FCM send body: nested objects, an array of
/// device tokens, notification text with non-ASCII, custom data.
private func payloadBenchBody(tokens: Int, dataEntries: Int) -> [UInt8] {
    var tokenList: [String] = []
    for i in 0..<tokens {
        tokenList.append("\"IQAAAACy0kYtAAB\(String(i, radix: 16))Xq9vZ2K8mQfLr3T5uW7yA1cE4gI6kM0oP2sU4wY6\"")
    }
    var data: [String] = []
    for i in 0..<dataEntries {
        data.append("{\"id\":\(1000 + i),\"kind\":\"order_update\",\"text\":\"您的订单 #\(i) 已发货 — déjà vu ✓\",\"amount\":\(i).50,\"tags\":[\"a\",\"b\"],\"read\":false}")
    }
    let json = """
    {"validate_only":false,"message":{"notification":{"title":"订单已发货","body":"Ihre Bestellung ist unterwegs 🚚"},\
    "android":{"collapse_key":-1,"urgency":"HIGH","ttl":"86400s","notification":{"click_action":{"type":1,"intent":"app://orders"}}},\
    "data_items":[\(data.joined(separator: ","))],\
    "token":[\(tokenList.joined(separator: ","))]}}
    """
    return Array(json.utf8)
}

nonisolated(unsafe) private var payloadBenchSink = 0

/// ns per call of `body`: warm-up, then doubles the iteration count until one run
/// takes at least 0.3 s.
private func payloadBenchMeasure(_ body: () -> Int) -> Double {
    let clock = ContinuousClock()
    var sink = 0
    let warmUpEnd = clock.now.advanced(by: .milliseconds(100))
    while clock.now < warmUpEnd { sink &+= body() }
    var iterations = 16
    while true {
        let start = clock.now
        for _ in 0..<iterations { sink &+= body() }
        let elapsed = start.duration(to: clock.now)
        if elapsed >= .milliseconds(300) {
            payloadBenchSink &+= sink
            let (seconds, attoseconds) = elapsed.components
            let ns = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
            return ns / Double(iterations)
        }
        iterations *= 2
    }
}

private func payloadBenchFormat(_ ns: Double) -> String {
    let value = Int(ns.rounded())
    var digits = String(value)
    var out = ""
    while digits.count > 3 {
        out = "," + digits.suffix(3) + out
        digits.removeLast(3)
    }
    return digits + out
}
