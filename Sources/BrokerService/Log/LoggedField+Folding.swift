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
        guard fields.count > 1 else { return Self.each(fields, single) }
        // The group of each field, as the index of its group's first field. An ordinary share has a
        // few dozen fields: comparing each with the groups' first fields in place (cheap members
        // first) costs less than a key per field, which copies seven members and retains their
        // strings; a large body is grouped through a dictionary of keys.
        var leaderOf = [Int](repeating: 0, count: fields.count)
        var sizes = [Int](repeating: 0, count: fields.count)
        var groups = 0
        if fields.count <= Self.scannedFields {
            var leaders: [Int] = []
            // Through the buffer: its elements are borrowed, where the array's subscript copies each
            // decision (and retains its members) for every comparison.
            fields.withUnsafeBufferPointer { decisions in
                let base = decisions.baseAddress!
                for index in decisions.indices {
                    let leader = leaders.first { Self.fold(base + $0, base + index) } ?? index
                    if leader == index { leaders.append(index) }
                    leaderOf[index] = leader
                    sizes[leader] += 1
                }
            }
            groups = leaders.count
        } else {
            var seen: [FoldKey: Int] = [:]
            for index in fields.indices {
                let key = FoldKey(fields[index])
                let leader = seen[key] ?? index
                if leader == index { seen[key] = index }
                leaderOf[index] = leader
                sizes[leader] += 1
            }
            groups = seen.count
        }
        // Every field on its own (the usual share): as it always was.
        guard groups < fields.count else { return Self.each(fields, single) }

        // One entry per group, at the place of its first field; a folded entry's prints collect after.
        var out: [LoggedField] = []
        out.reserveCapacity(groups)
        var slot: [Int: Int] = [:]           // a folded group's leader → its entry in `out`
        var prints: [Int: Set<String>] = [:] // a folded group's leader → its values' short prints
        fields.withUnsafeBufferPointer { decisions in
            for index in decisions.indices {
                let leader = leaderOf[index]
                guard sizes[leader] > 1 else {
                    out.append(single(decisions[index]))
                    continue
                }
                if leader == index {
                    let key = FoldKey(decisions[index])
                    var entry = LoggedField(location: key.location, path: key.pattern?.description ?? undeclaredPath,
                                            category: key.category, action: key.action, reason: key.reason,
                                            fingerprint: nil, minimisedFrom: key.minimisedFrom)
                    entry.count = sizes[leader]
                    entry.detector = key.detector
                    slot[leader] = out.count
                    out.append(entry)
                }
                if decisions[index].declaredAs != nil, let print = shortPrint(decisions[index]) {
                    prints[leader, default: []].insert(print)
                }
            }
        }
        for (leader, values) in prints where !values.isEmpty {
            if let at = slot[leader], out[at].isFolded { out[at].fingerprints = values.sorted() }
        }
        return out
    }

    /// `fields.map(single)`, each decision borrowed from the array's buffer rather than copied out of it.
    static func each(_ fields: [FieldDecision], _ single: (FieldDecision) -> LoggedField) -> [LoggedField] {
        fields.withUnsafeBufferPointer { decisions in
            var out: [LoggedField] = []
            out.reserveCapacity(decisions.count)
            for index in decisions.indices { out.append(single(decisions[index])) }
            return out
        }
    }

    /// Whether two decisions fold into one entry: `FoldKey(a) == FoldKey(b)`, compared on the decisions
    /// in place, the cheap members first (the pattern, its segments each a key, last). Through pointers:
    /// a decision passed by value is copied out of the array first, every member retained.
    static func fold(_ a: UnsafePointer<FieldDecision>, _ b: UnsafePointer<FieldDecision>) -> Bool {
        a.pointee.location == b.pointee.location && a.pointee.action == b.pointee.action
            && a.pointee.declaredAs?.segments.count == b.pointee.declaredAs?.segments.count
            && a.pointee.category == b.pointee.category
            && a.pointee.minimisedFrom?.category == b.pointee.minimisedFrom?.category
            && (a.pointee.reason ?? a.pointee.minimisedFrom?.reason) == (b.pointee.reason ?? b.pointee.minimisedFrom?.reason)
            && a.pointee.detector == b.pointee.detector && a.pointee.declaredAs == b.pointee.declaredAs
    }
}
