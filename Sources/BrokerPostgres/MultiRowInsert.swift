import PostgresNIO

/// One `INSERT … VALUES (…), (…), … [suffix]` for many rows: a batch's records, links or
/// aggregates go to the database in one round trip per table instead of one per row. The SQL
/// holds only placeholders (`$1`, `$2`, …); every value is a bound parameter. Rows past what
/// one statement may bind (PostgreSQL allows 65,535 parameters) go in further statements.
struct MultiRowInsert {
    let prefix: String
    let columns: Int
    let suffix: String
    private(set) var rows = 0
    private var bindings = PostgresBindings()
    private var done: [PostgresQuery] = []

    /// `table (a, b, c)` with `columns` of them; `suffix` like `ON CONFLICT DO NOTHING`.
    init(_ table: String, columns: Int, _ suffix: String = "") {
        prefix = "INSERT INTO " + table + " VALUES "
        self.columns = columns
        self.suffix = suffix
    }

    /// Adds one row; `bind` appends exactly `columns` values.
    mutating func row(_ bind: (inout PostgresBindings) -> Void) {
        if (rows + 1) * columns > 60_000 { flushStatement() }
        let before = bindings.count
        bind(&bindings)
        precondition(bindings.count - before == columns, "a row binds \(columns) values")
        rows += 1
    }

    /// The statements for the rows added since the last call, in order (each row is handed out once).
    mutating func queries() -> [PostgresQuery] {
        flushStatement()
        defer { done = [] }
        return done
    }

    private mutating func flushStatement() {
        guard rows > 0 else { return }
        var sql = prefix
        sql.reserveCapacity(prefix.count + rows * (columns * 7 + 3) + suffix.count + 1)
        var n = 0
        for r in 0..<rows {
            sql += r == 0 ? "(" : ",("
            for c in 0..<columns {
                n += 1
                sql += (c == 0 ? "$" : ",$") + String(n)
            }
            sql += ")"
        }
        if !suffix.isEmpty { sql += " " + suffix }
        done.append(PostgresQuery(unsafeSQL: sql, binds: bindings))
        bindings = PostgresBindings()
        rows = 0
    }
}
