import Foundation

/// Reading token endpoint answers: a JSON object, values found by dotted path.
///
/// Token responses are small and rare (once per token lifetime), so Foundation's
/// parser is fine here; the request hot path never parses JSON in this module.
enum TokenResponse {
    /// The top-level JSON object of `body`, or nil when it is not one.
    static func object(_ body: [UInt8]) -> [String: Any]? {
        guard !body.isEmpty,
              let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else { return nil }
        return value as? [String: Any]
    }

    /// The value at a dotted path (`data.auth_token`); a segment of digits also
    /// indexes an array.
    static func value(at path: [String], in object: [String: Any]) -> Any? {
        var current: Any = object
        for segment in path {
            if let dictionary = current as? [String: Any], let next = dictionary[segment] {
                current = next
            } else if let array = current as? [Any], let index = Int(segment), array.indices.contains(index) {
                current = array[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// A string, or a JSON number written as decimal text.
    static func text(_ value: Any?) -> String? {
        switch value {
        case let string as String: return string
        case let int as Int: return String(int)
        case let number as NSNumber: return number.stringValue
        default: return nil
        }
    }

    /// A whole number of seconds from a number or a numeric string.
    static func seconds(_ value: Any?) -> Int? {
        switch value {
        case let int as Int: return int
        case let double as Double: return double.isFinite ? Int(double) : nil
        case let string as String: return Int(string)
        case let number as NSNumber: return number.intValue
        default: return nil
        }
    }

    /// A token must be usable as a header value or form/query value: non-empty,
    /// printable ASCII without spaces (what OAuth 2.0 and the token calls issue).
    static func isUsableToken(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.count <= 16_384 && token.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f }
    }
}
