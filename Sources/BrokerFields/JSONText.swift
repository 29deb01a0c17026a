/// JSON string literals for the few documents the broker writes by hand
/// (rendered field paths, signed token requests, JWT parts, simulator answers).
public enum JSONText {
    /// `Hi "Ann"` → `"Hi \"Ann\""`; control characters as `\u00XX`.
    public static func quoted(_ text: String) -> String {
        var out: [UInt8] = []
        write(text, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `text` as a JSON string literal, byte by byte (runs that need no escape copied whole:
    /// building it a scalar at a time through `String` appends cost ~40 k instructions per problem body).
    public static func write(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            out.reserveCapacity(out.count + bytes.count + 2)
            out.append(UInt8(ascii: "\""))
            var run = 0
            for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i]))
                run = i + 1
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
                default:
                    out.append(contentsOf: "u00".utf8)
                    out.append(Hex.digit(byte >> 4))
                    out.append(Hex.digit(byte & 0x0f))
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...]))
            out.append(UInt8(ascii: "\""))
        }
    }
}
