import CJSONC
import Synchronization

/// A small process-wide pool of json-c tokeners, keyed by their depth (65 for every
/// document up to the default depth limit, the document's own depth + 1 beyond).
///
/// Why: `json_tokener_new_ex` allocates its state stack and print buffer on every
/// parse; reusing tokeners (reset between uses) removes that from the hot path.
/// Invariants: a tokener is used by one parse at a time (taken out of the pool under
/// the lock, returned after `json_tokener_reset`); at most `perDepthLimit` idle
/// tokeners are kept per depth; flags are always STRICT | VALIDATE_UTF8.
enum TokenerPool {
    private struct Tokener: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<json_tokener>
    }

    private static let idle = Mutex<[Int: [Tokener]]>([:])
    private static let perDepthLimit = 16

    /// Runs `body` with a tokener able to parse a document nested `documentDepth` deep.
    static func withTokener<R>(depth documentDepth: Int,
                               _ body: (UnsafeMutablePointer<json_tokener>) throws(PayloadError) -> R) throws(PayloadError) -> R {
        // json-c counts the top-level value as one level of its own stack.
        let depth = max(65, min(documentDepth, Int(Int32.max) - 1) + 1)
        let reused = idle.withLock { pool in pool[depth]?.popLast() }
        let tokener: Tokener
        if let reused {
            tokener = reused
        } else {
            guard let fresh = json_tokener_new_ex(Int32(depth)) else {
                throw PayloadError(code: .malformedBody, message: "cannot allocate a JSON parser", offset: nil)
            }
            json_tokener_set_flags(fresh, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
            tokener = Tokener(pointer: fresh)
        }
        defer {
            json_tokener_reset(tokener.pointer)
            let kept = idle.withLock { pool -> Bool in
                if pool[depth, default: []].count < perDepthLimit {
                    pool[depth, default: []].append(tokener)
                    return true
                }
                return false
            }
            if !kept { json_tokener_free(tokener.pointer) }
        }
        return try body(tokener.pointer)
    }
}
