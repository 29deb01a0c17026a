import BrokerLogStore
import Foundation
import GRDB
import GRDBSQLite

/// A prepared statement of the share log's write path, bound and stepped with sqlite3 directly.
///
/// GRDB's `execute(arguments:)` boxes every argument into a `DatabaseValue`,
/// validates the list against the statement and runs its observers on each
/// step: about half the cost of a log record's INSERT. The batch writer binds
/// its values straight into sqlite3 instead. The statement still comes from
/// GRDB's per-connection cache (looked up once per batch), so GRDB owns its
/// lifetime and finalizes it when the connection closes. Writer queue only.
struct BoundStatement {
    private let statement: Statement
    private let handle: SQLiteStatement
    private let connection: SQLiteConnection?

    init(_ db: Database, _ sql: String) throws {
        statement = try db.cachedStatement(sql: sql)
        handle = statement.sqliteStatement
        connection = db.sqliteConnection
    }

    /// Binds with `bind` (parameters numbered from 1), steps to the end, and resets.
    /// Rows a statement returns are passed to `row`.
    func run(_ bind: (Binder) -> Void, row: ((SQLiteStatement) -> Void)? = nil) throws {
        bind(Binder(handle: handle))
        defer { sqlite3_reset(handle) }
        while true {
            let code = sqlite3_step(handle)
            switch code {
            case SQLITE_DONE:
                return
            case SQLITE_ROW:
                row?(handle)
            default:
                // The message names the failure (a constraint, a full disk); it never quotes bound values.
                let message = connection.map { String(cString: sqlite3_errmsg($0)) }
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message)
            }
        }
    }

    /// Sets one statement's parameters; every value is copied by SQLite (`SQLITE_TRANSIENT`).
    struct Binder {
        let handle: SQLiteStatement

        func text(_ index: Int32, _ value: String?) {
            guard var value else { sqlite3_bind_null(handle, index); return }
            value.withUTF8 { text(index, utf8: $0) }
        }

        func text(_ index: Int32, utf8 bytes: [UInt8]) {
            bytes.withUnsafeBufferPointer { text(index, utf8: $0) }
        }

        func text(_ index: Int32, utf8 bytes: UnsafeBufferPointer<UInt8>) {
            if let base = bytes.baseAddress {
                sqlite3_bind_text(handle, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self),
                                  Int32(bytes.count), Self.transient)
            } else {
                sqlite3_bind_text(handle, index, "", 0, Self.transient)
            }
        }

        func int(_ index: Int32, _ value: Int64?) {
            guard let value else { sqlite3_bind_null(handle, index); return }
            sqlite3_bind_int64(handle, index, value)
        }

        func blob(_ index: Int32, _ value: [UInt8]) {
            value.withUnsafeBytes { blob(index, $0) }
        }

        func blob(_ index: Int32, _ value: Data) {
            value.withUnsafeBytes { blob(index, $0) }
        }

        func blob(_ index: Int32, _ bytes: UnsafeRawBufferPointer) {
            if let base = bytes.baseAddress {
                sqlite3_bind_blob(handle, index, base, Int32(bytes.count), Self.transient)
            } else {
                sqlite3_bind_zeroblob(handle, index, 0)
            }
        }

        /// `SQLITE_TRANSIENT`: SQLite copies the value before the bind call returns.
        private static var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }
    }
}
