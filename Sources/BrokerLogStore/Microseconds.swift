import Foundation

/// Instants are stored and hashed as integer microseconds since 1970-01-01 UTC:
/// exact, sortable, and the same on every platform.
package enum Microseconds {
    package static func from(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    }

    package static func date(_ microseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(microseconds) / 1_000_000)
    }
}
