import BrokerFields
import Foundation

/// The tokens a simulator's auth call issued, each with its expiry, on the simulator's clock.
final class IssuedTokens: Sendable {
    private let expiries = Locked([String: Date]())
    private let now: @Sendable () -> Date

    init(now: @escaping @Sendable () -> Date) { self.now = now }

    /// Remembers `token` as valid for `lifetime` seconds from now and returns it.
    @discardableResult
    func issue(_ token: String, lifetime: TimeInterval) -> String {
        let expiry = now().addingTimeInterval(lifetime)
        expiries.withLock { $0[token] = expiry }
        return token
    }

    /// Issued, and not yet expired.
    func isValid(_ token: String?) -> Bool {
        guard let token, let expiry = expiries.withLock({ $0[token] }) else { return false }
        return expiry > now()
    }

    /// Every issued token expires now.
    func expireAll() {
        let past = now().addingTimeInterval(-1)
        expiries.withLock { expiries in for key in expiries.keys { expiries[key] = past } }
    }
}
