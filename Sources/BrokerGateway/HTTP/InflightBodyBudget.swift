import NIOConcurrencyHelpers

/// The request-body bytes all connections together may have in flight (`limits.max_inflight_body_bytes`).
///
/// A request takes its share when its head arrives, before any byte of its body is read: its
/// `Content-Length` (a chunked body: the largest body allowed), capped at what the broker ever
/// buffers of one body (`max_body_bytes` + 1). It gives it back when its response has ended or its
/// connection closed. A request that does not fit is refused (503 `overloaded`), so many clients
/// that each start a large body and trickle it cannot make the broker hold unbounded memory:
/// the broker's buffers stay under the budget whatever they send.
///
/// One lock per request with a body, none per byte; requests without a body never touch it.
public final class InflightBodyBudget: Sendable {
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) { self.limit = limit }

    /// The bytes reserved right now (for `/metrics` and tests).
    public var inUse: Int { used.withLockedValue { $0 } }

    /// Reserves `bytes`; false (and nothing reserved) when they do not fit.
    func reserve(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        return used.withLockedValue { used in
            guard used + bytes <= limit else { return false }
            used += bytes
            return true
        }
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.withLockedValue { $0 = max(0, $0 - bytes) }
    }
}
