import BrokerCore

extension LoggedField {
    /// The folded path of undeclared fields: one entry per location, action and reason, without
    /// their names (a name a caller chose can itself be personal) or their values' prints.
    public static let undeclaredPath = "<undeclared>"

    /// What decisions must have in common to fold into one entry.
    struct FoldKey: Hashable {
        var location: FieldLocation
        /// The governing declaration; `nil` for every undeclared field alike.
        var pattern: FieldPattern?
        var category: String?
        var action: FieldAction
        var reason: ReasonCode?
        var minimisedFrom: String?
        var detector: String?

        init(_ field: FieldDecision) {
            location = field.location; pattern = field.declaredAs; category = field.category; action = field.action
            reason = field.reason ?? field.minimisedFrom?.reason; minimisedFrom = field.minimisedFrom?.category
            detector = field.detector
        }

        /// The cheap members first: the pattern (its segments, each key a string) is compared last.
        static func == (a: FoldKey, b: FoldKey) -> Bool {
            a.location == b.location && a.action == b.action && a.pattern?.segments.count == b.pattern?.segments.count
                && a.category == b.category && a.reason == b.reason && a.minimisedFrom == b.minimisedFrom
                && a.detector == b.detector && a.pattern == b.pattern
        }
    }

    /// Up to this many fields, groups are found by scanning (see `folding`).
    static let scannedFields = 48

    /// A share's field decisions as its record keeps them, bounded whatever the body.
    ///
    /// Decisions with the same location, declaration (or all undeclared), category, action, reason
    /// and `minimisedFrom` fold into one entry at the place of the first: `path` is the declaration's
    /// pattern (`message.token[*]`) or `<undeclared>`, `count` how many, `fingerprints` the sorted
    /// distinct short prints of the values (`shortPrint` returns `nil` for a field without a
    /// fingerprint; undeclared fields keep none). A group of one is `single(field)`, the entry as it
    /// always was, so ordinary records keep their bytes. The record then holds one entry per group
    /// and 11 bytes (`"xxxxxxxx",`) per distinct personal value.
    public static func folding(_ fields: [FieldDecision], single: (FieldDecision) -> LoggedField,
                               shortPrint: (FieldDecision) -> String?) -> [LoggedField] {
        guard fields.count > 1 else { return fields.map(single) }
        // The group of each field. An ordinary share has a few dozen fields: a scan of the groups so far
        // (cheap members compared first) costs less than hashing every key, declaration pattern and all
        // (~3 k instructions a lookup); a large body is grouped through a dictionary.
        var keys: [FoldKey] = []
        var groups: [FoldKey: Int] = [:]
        let scan = fields.count <= Self.scannedFields
        var groupOf: [Int] = []
        groupOf.reserveCapacity(fields.count)
        var sizes: [Int] = []
        for field in fields {
            let key = FoldKey(field)
            if let group = scan ? keys.firstIndex(of: key) : groups[key] {
                groupOf.append(group)
                sizes[group] += 1
            } else {
                if scan { keys.append(key) } else { groups[key] = sizes.count }
                groupOf.append(sizes.count)
                sizes.append(1)
            }
        }
        // Every field on its own (the usual share): as it always was.
        guard sizes.count < fields.count else { return fields.map(single) }

        var out: [LoggedField?] = Array(repeating: nil, count: sizes.count)
        var prints: [Set<String>] = Array(repeating: [], count: sizes.count)
        for (index, field) in fields.enumerated() {
            let group = groupOf[index]
            guard sizes[group] > 1 else {
                out[group] = single(field)
                continue
            }
            if out[group] == nil {
                let key = FoldKey(field)
                var entry = LoggedField(location: key.location, path: key.pattern?.description ?? undeclaredPath,
                                        category: key.category, action: key.action, reason: key.reason,
                                        fingerprint: nil, minimisedFrom: key.minimisedFrom)
                entry.count = sizes[group]
                entry.detector = key.detector
                out[group] = entry
            }
            if field.declaredAs != nil, let print = shortPrint(field) { prints[group].insert(print) }
        }
        // Every group has its first field, so none is left nil.
        return out.enumerated().compactMap { group, entry in
            guard var entry else { return nil }
            if entry.isFolded, !prints[group].isEmpty { entry.fingerprints = prints[group].sorted() }
            return entry
        }
    }
}
