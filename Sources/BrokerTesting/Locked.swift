import Foundation

/// A value behind an `NSLock`, shared between the server's request handlers and
/// the test that inspects a simulator.
///
/// `Synchronization.Mutex` needs macOS 15 while the package supports macOS 14, so
/// this wraps `NSLock`. Critical sections are a few assignments: never await or
/// do I/O inside `withLock`.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }
}
