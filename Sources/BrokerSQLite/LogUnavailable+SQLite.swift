import BrokerLogStore
import BrokerService
import GRDB

extension LogUnavailable {
    /// Maps any failure of the store to `LogUnavailable`.
    ///
    /// The message names the operation and SQLite's result code only: never
    /// the SQL arguments or SQLite's own message, which can quote values.
    static func sqlite(_ error: any Error, during operation: String) -> LogUnavailable {
        if let error = error as? LogUnavailable { return error }
        if let error = error as? DatabaseError {
            let code = error.resultCode
            let name = Self.names[code.rawValue] ?? "SQLITE_ERROR"
            return LogUnavailable(
                "\(operation) failed: SQLite \(name) (\(error.extendedResultCode.rawValue))\(Self.hint(code))")
        }
        if error is CancellationError { return LogUnavailable("\(operation) was cancelled") }
        return LogUnavailable("\(operation) failed: \(type(of: error))")
    }

    private static let names: [Int32: String] = [
        1: "SQLITE_ERROR", 2: "SQLITE_INTERNAL", 3: "SQLITE_PERM", 4: "SQLITE_ABORT", 5: "SQLITE_BUSY",
        6: "SQLITE_LOCKED", 7: "SQLITE_NOMEM", 8: "SQLITE_READONLY", 9: "SQLITE_INTERRUPT", 10: "SQLITE_IOERR",
        11: "SQLITE_CORRUPT", 13: "SQLITE_FULL", 14: "SQLITE_CANTOPEN", 15: "SQLITE_PROTOCOL", 19: "SQLITE_CONSTRAINT",
        20: "SQLITE_MISMATCH", 21: "SQLITE_MISUSE", 23: "SQLITE_AUTH", 26: "SQLITE_NOTADB",
    ]

    private static func hint(_ code: ResultCode) -> String {
        switch code {
        case .SQLITE_FULL: return ": the disk or the database's page limit is full"
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN: return ": check that the database file and its folder are writable"
        case .SQLITE_BUSY, .SQLITE_LOCKED: return ": another process holds the database lock"
        case .SQLITE_IOERR: return ": the storage reported an I/O error"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: return ": the database file is damaged"
        case .SQLITE_CONSTRAINT: return ": a record broke a schema constraint"
        default: return ""
        }
    }
}
