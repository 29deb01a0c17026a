/// One cell of the broker's CSV exports.
public enum CSVCell {
    /// RFC 4180 quoting, and a leading `=`, `+`, `-`, `@`, tab or CR neutralised with `'`: a subject id
    /// or any other text a caller chose must not become a spreadsheet formula in a compliance export.
    ///
    /// Both tests read Unicode scalars, never `Character`s: a grapheme cluster hides its base, so
    /// `=` followed by a combining mark (U+0301) or a zero-width joiner is not the Character `=`
    /// although a spreadsheet reads it as a formula, and `"` or `,` with a mark after them, or a
    /// CRLF (one Character), would escape the quoting.
    public static func escape(_ text: String) -> String {
        var value = text
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { value = "'" + value }
        guard value.unicodeScalars.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        var quoted = "\""
        quoted.unicodeScalars.reserveCapacity(value.unicodeScalars.count + 2)
        for scalar in value.unicodeScalars {
            quoted.unicodeScalars.append(scalar)
            if scalar == "\"" { quoted.unicodeScalars.append(scalar) }
        }
        return quoted + "\""
    }
}
