import CJSONC
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A small process-wide pool of json-c tokeners, keyed by their depth (65 for every
/// document up to the default depth limit, the document's own depth + 1 beyond).
///
/// Why: `json_tokener_new_ex` allocates its state stack and print buffer on every
/// parse; reusing tokeners (reset between uses) removes that from the hot path.
/// Invariants: a tokener is used by one parse at a time (taken out of the pool under
/// the lock, returned after `json_tokener_reset`); at most `perDepthLimit` idle
/// tokeners are kept per depth; flags are always STRICT | VALIDATE_UTF8.
/// (A pthread mutex rather than `Synchronization.Mutex`, which needs macOS 15 while
/// the package declares macOS 14.)
enum TokenerPool {
    private final class Storage: @unchecked Sendable {
        // Heap-allocated: a pthread mutex must not move, and `&property` gives no such promise.
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        var idle: [Int: [UnsafeMutablePointer<json_tokener>]] = [:]
        init() {
            mutex.initialize(to: pthread_mutex_t())
            pthread_mutex_init(mutex, nil)
        }

        func withLock<R>(_ body: (inout [Int: [UnsafeMutablePointer<json_tokener>]]) -> R) -> R {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return body(&idle)
        }
    }

    private static let storage = Storage()
    private static let perDepthLimit = 16

    /// Runs `body` with a tokener able to parse a document nested `documentDepth` deep.
    static func withTokener<R>(depth documentDepth: Int,
                               _ body: (UnsafeMutablePointer<json_tokener>) throws(PayloadError) -> R) throws(PayloadError) -> R {
        // json-c counts the top-level value as one level of its own stack.
        let depth = max(65, min(documentDepth, Int(Int32.max) - 1) + 1)
        let tokener: UnsafeMutablePointer<json_tokener>
        if let reused = storage.withLock({ $0[depth]?.popLast() }) {
            tokener = reused
        } else {
            guard let fresh = json_tokener_new_ex(Int32(depth)) else {
                throw PayloadError(code: .malformedBody, message: "cannot allocate a JSON parser", offset: nil)
            }
            json_tokener_set_flags(fresh, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
            tokener = fresh
        }
        defer {
            json_tokener_reset(tokener)
            let kept = storage.withLock { idle -> Bool in
                guard idle[depth, default: []].count < perDepthLimit else { return false }
                idle[depth, default: []].append(tokener)
                return true
            }
            if !kept { json_tokener_free(tokener) }
        }
        return try body(tokener)
    }
}
