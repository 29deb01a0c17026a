/// Non-personal fields that admit long free text: `sharebroker check` warns about each.
///
/// A non-personal label lets a value pass without consent, so whatever the caller can write there
/// leaves unchecked but for `PersonalDataDetector`, which finds only what has a checksum or a shape.
/// A field whose constraint still lets more than `freeTextLimit` characters through (a `pattern`
/// with a longer bound, `max_length` above it, or a `type: string` alone) is a channel: give it a
/// tight pattern or a personal category. (A field with no constraint at all has its own warning:
/// `unconstrainedFreeText`.)
extension PolicyBundle {
    /// The most characters of free text a non-personal field may take without a warning.
    public static let freeTextLimit = 256

    public var longFreeText: [(provider: String, operation: String, path: String, line: Int, admits: Int?)] {
        var found: [(provider: String, operation: String, path: String, line: Int, admits: Int?)] = []
        for provider in adapters.keys.sorted() {
            for operation in adapters[provider]?.operations ?? [] {
                for declaration in operation.declarations where !declaration.credential {
                    guard let category = declaration.category, taxonomy.categories[category]?.personal == false,
                          let constraint = declaration.constraint, constraint.values == nil,
                          constraint.type != .boolean, constraint.type != .number else { continue }
                    // The least of the bounds the constraint states; `nil`: none bounds it.
                    var bound = constraint.maxLength
                    if let pattern = constraint.pattern, let length = (try? ValuePattern(pattern))?.maximumLength {
                        bound = min(bound ?? length, length)
                    }
                    if let bound, bound <= Self.freeTextLimit { continue }
                    found.append((provider, operation.name, declaration.pattern.description, declaration.line, bound))
                }
            }
        }
        return found
    }
}
