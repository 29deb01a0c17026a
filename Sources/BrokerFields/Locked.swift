import Foundation

/// A value guarded by a lock: the little shared state of the broker's modules
/// (group-commit queues, caches, counters, a simulator's records).
///
/// `Synchronization.Mutex` needs macOS 15 while the package supports macOS 14,
/// so this wraps `NSLock`. Critical sections are a few assignments: never await,
/// resume a continuation or do I/O inside `withLock`.
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
