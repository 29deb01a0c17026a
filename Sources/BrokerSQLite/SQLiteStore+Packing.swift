import BrokerLogStore
import BrokerService
import Foundation
import GRDB
import GRDBSQLite

/// Packed bodies (`RecordPacking`) in SQL: `share_log.body` is a record's canonical JSON as
/// TEXT (records written before 2026-12-08, revocation records, intents the fence rewrote),
/// or a BLOB packed against the dictionary `dict` names (`log_dictionaries`).
extension SQLiteStore {
    /// The canonical body of the `share_log` row `alias` as TEXT, whichever way it is stored (by the
    /// body's type: a BLOB without its dictionary is an error, never read as something else).
    static func bodyText(_ alias: String) -> String {
        "CASE WHEN typeof(\(alias).body) = 'text' THEN \(alias).body ELSE log_body(\(alias).body, \(alias).seq, "
            + "(SELECT bytes FROM log_dictionaries d WHERE d.id = \(alias).dict)) END"
    }

    /// `share_log`'s columns with every record in its portable form, as `l` (`records`, and a copy to
    /// another store): the body as its canonical text, `prev_hash` the previous record's hash.
    public static let portableRecordColumns = """
        l.stream, l.seq, l.kind, l.share_id, l.time_us, l.subject, l.provider, l.purpose, l.decision, l.caller, l.channel,
        \(bodyText("l")) AS body,
        coalesce(l.prev_hash, (SELECT p.hash FROM share_log p WHERE p.stream = l.stream AND p.seq = l.seq - 1), zeroblob(32)) AS prev_hash,
        l.hash
        """

    /// `log_body(body, seq, dictionary)`: a packed body's canonical JSON (TEXT); a TEXT body as it
    /// is. On every connection of the store (and `verify`'s): queries read `json_each` of it.
    public static func registerLogFunctions(_ db: Database) {
        db.add(function: logBody)
    }

    private static let logBody = DatabaseFunction("log_body", argumentCount: 3, pure: true) { values in
        switch values[0].storage {
        case .string(let text):
            return text
        case .blob(let packed):
            guard let seq = Int64.fromDatabaseValue(values[1]) else { throw DatabaseError(message: "log_body: no seq") }
            let dictionary: Data
            switch values[2].storage {
            case .blob(let bytes): dictionary = bytes
            default: throw DatabaseError(message: "log_body: the record's dictionary is missing")
            }
            let body = packed.withUnsafeBytes { p in
                dictionary.withUnsafeBytes { d in RecordPacking.unpack(p, seq: seq, dictionary: d) }
            }
            guard let body else { throw DatabaseError(message: "log_body: the record does not unpack") }
            return String(decoding: body, as: UTF8.self)
        default:
            return nil
        }
    }

    /// `parts` as they can be stored: their dictionary stored first when the store is not known to hold it
    /// (in the batch's transaction; `added` collects it, marked stored once the batch commits). A row
    /// already under that id with other bytes (planted: ids are content hashes) is not used: the record
    /// is then stored as its text, and nothing else fails.
    func storable(_ parts: CanonicalParts, _ writer: BatchStatements, _ added: inout Set<Int64>) throws -> CanonicalParts {
        guard let dictionary = parts.packed?.dictionary, !added.contains(dictionary.id),
              !dictionaries.isStored(dictionary.id) else { return parts }
        var existing: [UInt8]?
        try writer.dictionaryBytes.run({ b in b.int(1, dictionary.id) }, row: { statement in
            let count = Int(sqlite3_column_bytes(statement, 0))
            existing = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: sqlite3_column_blob(statement, 0), count: count))
        })
        if let existing {
            guard existing == dictionary.bytes else {
                logger.error("a stored log dictionary differs from its id: records that would use it are stored as text",
                             metadata: ["log.dictionary": "\(dictionary.id)"])
                return parts.unpacked
            }
        } else {
            try writer.storeDictionary.run { b in b.int(1, dictionary.id); b.blob(2, dictionary.bytes) }
        }
        added.insert(dictionary.id)
        return parts
    }
}
