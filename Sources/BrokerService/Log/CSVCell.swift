/// One cell of the broker's CSV exports.
public enum CSVCell {
    /// RFC 4180 quoting, and a leading `=`, `+`, `-`, `@`, tab or CR neutralised with `'`: a subject id
    /// or any other text a caller chose must not become a spreadsheet formula in a compliance export.
    public static func escape(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@\t\r".contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
