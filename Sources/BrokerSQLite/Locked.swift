import Foundation

/// A value guarded by a lock, for the little shared state the store keeps
/// (the group-commit queue, the chain tip, counters).
///
/// `Synchronization.Mutex` needs macOS 15 while the package supports macOS 14,
/// so this wraps `NSLock`. Critical sections are a few assignments: never call
/// out (resume a continuation, touch the database) while holding it.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
