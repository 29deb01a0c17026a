import BrokerFields
/// `application/x-www-form-urlencoded` parsing, as the providers' servers do it
/// (also used for query strings): pairs split on `&`, name and value on the first
/// `=`, `+` is a space, `%XX` is a byte; the decoded bytes must be UTF-8.
enum FormEncoding {
    struct Malformed: Error {}

    static func parse(_ text: String) throws -> [(name: String, value: String)] {
        if text.isEmpty { return [] }
        var pairs: [(name: String, value: String)] = []
        for part in text.split(separator: "&", omittingEmptySubsequences: true) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try self.decode(pieces[0])
            let value = pieces.count > 1 ? try self.decode(pieces[1]) : ""
            pairs.append((name, value))
        }
        return pairs
    }

    static func decode(_ text: Substring) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(Hex.nibble), let low = iterator.next().flatMap(Hex.nibble) else {
                    throw Malformed()
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        guard let string = String(validating: bytes, as: UTF8.self) else { throw Malformed() }
        return string
    }

    /// Encodes a value for a form body or query (unreserved characters kept).
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }
}

extension Array where Element == (name: String, value: String) {
    /// The first value for `name`.
    func first(_ name: String) -> String? {
        self.first { $0.name == name }?.value
    }
}
