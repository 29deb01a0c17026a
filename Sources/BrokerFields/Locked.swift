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

    /// Changes the value. Never use it to read: `withLock { $0 }` hands the body the value as
    /// `inout`, and when `Value` is a function type (or holds one directly, as an optional or a
    /// tuple) the write-back at the end of that access stores a reabstraction thunk around the
    /// closure — one more each call, so calling what was read gets slower without bound.
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// Reads under the lock without writing anything back (see `withLock`).
    public func read<R>(_ body: (Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(value)
    }

    /// A copy of the value, taken under the lock.
    public var snapshot: Value { read { $0 } }
}
