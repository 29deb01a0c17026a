import BrokerFields

/// The compiled declarations of one location (body, query, headers or path) of an operation.
///
/// A trie over pattern segments. `match` finds the declaration for a concrete
/// value's path: a declaration covers the value at exactly its own depth — `a.b`
/// that one key, `a.*` each key of `a` one level down, `a[*]` each element. A
/// value nested deeper than any declaration is undeclared: an object sent where a
/// scalar is declared cannot smuggle data under a harmless category. Where several
/// declarations match, literal keys win over wildcards, from the left, so
/// `message.android.*` (operations data) does not swallow
/// `message.android.data` (notification content).
public struct FieldSchema: Sendable {
    struct Node: Sendable {
        var literal = LiteralChildren()
        var anyKey: Int?
        var anyIndex: Int?
        var declaration: Int?
        var embeddedJSON = false
    }

    private(set) var nodes: [Node] = [Node()]
    public private(set) var declarations: [FieldDeclaration] = []

    public init() {}

    public var isEmpty: Bool { declarations.isEmpty && nodes.count == 1 }

    /// Adds a declaration; returns the declaration it collides with, if the same pattern is declared twice.
    @discardableResult
    mutating func add(_ declaration: FieldDeclaration) -> FieldDeclaration? {
        let node = insert(declaration.pattern)
        if let existing = nodes[node].declaration { return declarations[existing] }
        nodes[node].declaration = declarations.count
        declarations.append(declaration)
        return nil
    }

    /// Marks `pattern` as a string that holds an embedded JSON document.
    mutating func addEmbeddedJSON(_ pattern: FieldPattern) {
        let node = insert(pattern)
        nodes[node].embeddedJSON = true
    }

    private mutating func insert(_ pattern: FieldPattern) -> Int {
        var current = 0
        for segment in pattern.segments {
            let next: Int?
            switch segment {
            case .key(let key): next = nodes[current].literal[key]
            case .anyKey: next = nodes[current].anyKey
            case .anyIndex: next = nodes[current].anyIndex
            }
            if let next {
                current = next
                continue
            }
            nodes.append(Node())
            let created = nodes.count - 1
            switch segment {
            case .key(let key): nodes[current].literal.add(key, created)
            case .anyKey: nodes[current].anyKey = created
            case .anyIndex: nodes[current].anyIndex = created
            }
            current = created
        }
        return current
    }

    /// The declaration that governs `path`, or `nil` when the path is undeclared.
    public func match(_ path: FieldPath) -> FieldDeclaration? {
        var best: (depth: Int, declaration: Int)?
        search(path.segments, 0, 0, &best)
        return best.map { declarations[$0.declaration] }
    }

    /// Depth-first, literal before wildcard: the first full-length match found is the most specific.
    private func search(_ segments: [PathSegment], _ position: Int, _ node: Int, _ best: inout (depth: Int, declaration: Int)?) {
        if best != nil { return }
        let current = nodes[node]
        guard position < segments.count else {
            if let declaration = current.declaration { best = (position, declaration) }
            return
        }
        switch segments[position] {
        case .key(let key):
            if let next = current.literal[key] { search(segments, position + 1, next, &best) }
            if let next = current.anyKey { search(segments, position + 1, next, &best) }
        case .index:
            if let next = current.anyIndex { search(segments, position + 1, next, &best) }
        }
    }

    /// True when the string at exactly `path` is declared `encoding: json`.
    public func isEmbeddedJSON(_ path: FieldPath) -> Bool {
        var found = false
        embedded(path.segments, 0, 0, &found)
        return found
    }

    private func embedded(_ segments: [PathSegment], _ position: Int, _ node: Int, _ found: inout Bool) {
        if found { return }
        let current = nodes[node]
        guard position < segments.count else {
            found = current.embeddedJSON
            return
        }
        switch segments[position] {
        case .key(let key):
            if let next = current.literal[key] { embedded(segments, position + 1, next, &found) }
            if let next = current.anyKey { embedded(segments, position + 1, next, &found) }
        case .index:
            if let next = current.anyIndex { embedded(segments, position + 1, next, &found) }
        }
    }

    /// True when some embedded-JSON declaration exists (lets the codecs skip the check).
    public var hasEmbeddedJSON: Bool { nodes.contains { $0.embeddedJSON } }
}

/// A trie node's children by literal key. Most nodes have a few: those are found by a scan that
/// compares lengths first and then bytes (hashing the key cost more, ~700 instructions a lookup on
/// every segment of every field); a node with many keys (an RPC API's parameters) keeps a dictionary.
struct LiteralChildren: Sendable {
    private var few: [(key: ExactKey, node: Int)] = []
    private var many: [ExactKey: Int]?
    private static let scanned = 12

    subscript(key: ExactKey) -> Int? {
        if let many { return many[key] }
        for child in few where child.key == key { return child.node }
        return nil
    }

    mutating func add(_ key: ExactKey, _ node: Int) {
        if many != nil {
            many?[key] = node
            return
        }
        few.append((key, node))
        if few.count > Self.scanned {
            many = Dictionary(few, uniquingKeysWith: { _, last in last })
            few = []
        }
    }
}
