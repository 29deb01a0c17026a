/// What an adapter says about one declared field.
public struct FieldDeclaration: Sendable, Hashable {
    /// What to do with the share when this field is denied.
    public enum OnDeny: String, Sendable, Hashable {
        /// Refuse the whole share (the default).
        case block
        /// Remove the field and forward the rest.
        case strip
    }

    public var location: FieldLocation
    /// The full declared path (an embedded document's fields include their parent).
    public var pattern: FieldPattern
    /// The data category; `nil` only for credential and subject fields.
    public var category: String?
    public var onDeny: OnDeny
    /// Kept (encrypted) for the provider's revocation call.
    public var revocationKey: Bool
    /// Filled by the broker from the adapter's credentials; a caller's value is dropped.
    public var credential: Bool
    /// Names the share's subject (`subject: true`) for a caller that cannot send `X-Share-Subject`: the
    /// broker reads it as the subject and removes it; it never reaches the provider.
    public var subject: Bool = false
    /// What the value may be (`values`, `pattern`, `type`, `max_length`); a value outside is `undeclared_value`.
    public var constraint: ValueConstraint?
    /// At most this many occurrences per share (`max_items`, for `[*]` and `*` declarations).
    public var maxItems: Int?
    /// The coarser form this field may be sent in when its own category is denied (`minimise:`).
    public var minimise: Minimisation?
    /// Line in the adapter file.
    public var line: Int

    public init(location: FieldLocation, pattern: FieldPattern, category: String?, onDeny: OnDeny = .block,
                revocationKey: Bool = false, credential: Bool = false, constraint: ValueConstraint? = nil,
                maxItems: Int? = nil, minimise: Minimisation? = nil, line: Int = 0) {
        self.location = location; self.pattern = pattern; self.category = category; self.onDeny = onDeny
        self.revocationKey = revocationKey; self.credential = credential; self.constraint = constraint
        self.maxItems = maxItems; self.minimise = minimise; self.line = line
    }
}

