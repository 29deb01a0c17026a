import Foundation

/// The end user whose data is shared.
public struct Subject: Sendable, Hashable, Codable {
    public var id: String
    public var birthDate: CalendarDay?
    /// Set when the age is known to be under the limit without a birth date.
    public var minor: Bool?
    /// Where the subject lives (ISO 3166-1 alpha-2); the broker's home region when unknown.
    public var region: String?
    /// Set when the account was deleted: nothing more is shared about the subject, ever.
    public var deletedAt: Date?

    public init(id: String, birthDate: CalendarDay? = nil, minor: Bool? = nil, region: String? = nil, deletedAt: Date? = nil) {
        self.id = id; self.birthDate = birthDate; self.minor = minor; self.region = region; self.deletedAt = deletedAt
    }

    /// True when the subject is known to be a minor at `day`: flagged, or younger than `age` years.
    /// A subject with neither flag nor birth date is not known to be a minor.
    public func isMinor(on day: CalendarDay, age: Int) -> Bool {
        if minor == true { return true }
        guard let birth = birthDate else { return false }
        var years = day.year - birth.year
        if (day.month, day.day) < (birth.month, birth.day) { years -= 1 }
        return years < age
    }
}

extension CalendarDay: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let day = CalendarDay(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected YYYY-MM-DD"))
        }
        self = day
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
