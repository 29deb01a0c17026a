/// JSON string literals for the few documents the broker writes by hand
/// (rendered field paths, signed token requests, JWT parts, simulator answers).
public enum JSONText {
    /// `Hi "Ann"` → `"Hi \"Ann\""`; control characters as `\u00XX`.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u00" + Hex.encode([UInt8(scalar.value)])
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
