/// An authenticated internal client of the broker.
public struct Caller: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable, Codable {
        case share, grants, compliance, admin
    }

    public var id: String
    public var roles: Set<Role>
    /// The providers a `share` caller may send to.
    public var providers: Set<String>
    /// When set, the purposes a `share` caller may share for; `nil` means any.
    public var purposes: Set<String>?

    public init(id: String, roles: Set<Role>, providers: Set<String> = [], purposes: Set<String>? = nil) {
        self.id = id; self.roles = roles; self.providers = providers; self.purposes = purposes
    }

    public func mayShare(with provider: String) -> Bool {
        roles.contains(.share) && providers.contains(provider)
    }

    public func mayShare(for purpose: String) -> Bool {
        purposes?.contains(purpose) ?? true
    }
}
