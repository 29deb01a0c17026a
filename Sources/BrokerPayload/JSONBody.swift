import BrokerFields
import CJSONC

/// Strict JSON body backed by a json-c object tree.
///
/// What: the parsed, validated form of one JSON document (a request body, or a JSON
/// document embedded in a string / form value), its flattened leaves, and its
/// re-serialisation with some fields removed.
///
/// Why: the broker forwards its own re-serialisation of exactly what it inspected
/// ("what was checked is what is sent"). So the bytes are first checked by a strict
/// validator (see `StrictJSONValidator`: UTF-8, escapes, surrogates, duplicate keys
/// compared as exact bytes after unescaping, depth, numbers, trailing data), and only
/// then parsed by json-c; anything two parsers could read differently is refused
/// with `malformed_body`. Beyond RFC 8259 the broker refuses: a UTF-8 BOM, duplicate
/// keys, object keys containing U+0000 (json-c truncates keys there), integers outside
/// Int64.min...UInt64.max (json-c saturates them), `-0` (json-c prints `0`), numbers
/// overflowing a Double, nesting deeper than `limits.maxDepth`.
///
/// Invariants:
/// - immutable after `init`; the json-c tree is owned by this object and freed in
///   `deinit`. `serialized(removing:)` works on a private deep copy of the tree when
///   it removes or replaces anything, and prints the tree itself under a lock when
///   not, so it may be called any number of times and from several threads
///   concurrently (hence `@unchecked Sendable`).
/// - `fields` lists every leaf in document order: strings, numbers (exact source
///   text, which is also exactly what json-c prints), booleans, null, and empty
///   objects/arrays. Object members add `.key`, array elements `.index`; a
///   top-level scalar has the empty path.
/// - a string leaf whose path satisfies `embeddedJSON` is parsed as a JSON document
///   with the same rules (its depth is limited on its own by `maxDepth`) and its
///   leaves are listed instead of the string, with paths continuing below it.
public final class JSONBody: @unchecked Sendable {
    /// Every leaf in document order (embedded documents flattened in place).
    public let fields: [FieldOccurrence]

    /// Owned json-c tree (`json_object *`), released in `deinit`; nil for a JSON
    /// `null` document (json-c represents `null` as a NULL pointer).
    private let root: OpaquePointer?
    /// Embedded documents, by their path relative to this document's root.
    private let embedded: [(path: [PathSegment], body: JSONBody)]
    /// Path of this document's root inside the outermost body (empty at top level).
    private let base: [PathSegment]
    /// Guards the tree's own print buffer (json-c prints into the root's): a document sent as it
    /// came is printed from the tree itself, not from a copy (see `serialize`).
    private let printing = Locked(())

    /// Parses and validates `bytes` as one strict JSON document.
    /// - Throws: `body_too_large` over `limits.maxBytes`, `malformed_body` otherwise.
    public convenience init(bytes: UnsafeRawBufferPointer, limits: PayloadLimits,
                            location: FieldLocation = .body,
                            embeddedJSON: (FieldPath) -> Bool = { _ in false }) throws(PayloadError) {
        let parsed = try JSONBody.parse(bytes, limits: limits, location: location,
                                        embeddedJSON: embeddedJSON, base: [])
        self.init(parsed)
    }

    /// Same as `init(bytes:limits:location:embeddedJSON:)` for an array of bytes.
    public convenience init(_ bytes: [UInt8], limits: PayloadLimits,
                            location: FieldLocation = .body,
                            embeddedJSON: (FieldPath) -> Bool = { _ in false }) throws(PayloadError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(PayloadError) -> Parsed in
                try JSONBody.parse(buffer, limits: limits, location: location,
                                   embeddedJSON: embeddedJSON, base: [])
            }
        }
        self.init(try result.get())
    }

    struct Parsed {
        var root: OpaquePointer?
        var fields: [FieldOccurrence]
        var embedded: [(path: [PathSegment], body: JSONBody)]
        var base: [PathSegment]
    }

    private init(_ parsed: Parsed) {
        root = parsed.root
        fields = parsed.fields
        embedded = parsed.embedded
        base = parsed.base
    }

    deinit {
        json_object_put(root)
    }

    // MARK: Parsing

    static func parse(_ bytes: UnsafeRawBufferPointer, limits: PayloadLimits, location: FieldLocation,
                      embeddedJSON: (FieldPath) -> Bool, base: [PathSegment]) throws(PayloadError) -> Parsed {
        if bytes.count > limits.maxBytes {
            throw PayloadError.tooLarge(bytes.count, limit: limits.maxBytes)
        }
        var validator = StrictJSONValidator(bytes, maxDepth: limits.maxDepth, maxLeaves: limits.maxFields)
        try validator.run()
        let root = try jsoncParse(bytes, depth: validator.deepest)
        return try withoutActuallyEscaping(embeddedJSON) { (predicate) throws(PayloadError) -> Parsed in
            var flattener = Flattener(source: bytes, numbers: validator.numbers, location: location,
                                      limits: limits, embeddedJSON: predicate, base: base)
            do throws(PayloadError) {
                try flattener.flatten(root)
            } catch {
                json_object_put(root)
                throw error
            }
            return Parsed(root: root, fields: flattener.fields, embedded: flattener.embedded, base: base)
        }
    }

    /// Parses already-validated bytes with json-c (strict mode, UTF-8 validation).
    private static func jsoncParse(_ bytes: UnsafeRawBufferPointer, depth: Int) throws(PayloadError) -> OpaquePointer? {
        guard bytes.count <= Int(Int32.max), let base = bytes.baseAddress else {
            throw PayloadError.malformed("body cannot be parsed", at: 0)
        }
        return try TokenerPool.withTokener(depth: depth) { tok throws(PayloadError) -> OpaquePointer? in
            let chars = base.assumingMemoryBound(to: CChar.self)
            var obj = json_tokener_parse_ex(tok, chars, Int32(bytes.count))
            if obj == nil && json_tokener_get_error(tok) == json_tokener_continue {
                // A top-level number is only complete once json-c sees a delimiter.
                obj = json_tokener_parse_ex(tok, " ", 1)
            }
            let err = json_tokener_get_error(tok)
            guard err == json_tokener_success else {
                let desc = json_tokener_error_desc(err).map { String(cString: $0) } ?? "parse error"
                throw PayloadError.malformed("json-c rejected the body (\(desc))", at: json_tokener_get_parse_end(tok))
            }
            return obj
        }
    }

    // MARK: Serialisation

    /// Re-serialises the document with every node whose path is in `removing` removed.
    ///
    /// Paths are absolute (as in `fields`); they may name a leaf or a container (the
    /// whole subtree goes), array indices are the ORIGINAL indices, paths that do not
    /// exist are ignored. A path below an embedded document's path removes that inner
    /// field and the embedded string is rewritten with the inner document
    /// re-serialised; the embedded path itself removes the whole string. Removing the
    /// empty path (the root) yields an empty container of the root's kind (`{}` or
    /// `[]`), or `null` for a scalar root.
    ///
    /// A leaf in `replacing` whose current value is one of its path's received values is
    /// replaced by the value to send (a string by a string, a number by a number); removal wins
    /// over replacement.
    ///
    /// Output: json-c `JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE`; works
    /// on a deep copy, so the body is unchanged and the call is repeatable.
    public func serialized(removing: Set<FieldPath>, replacing: FieldReplacements = [:]) -> [UInt8] {
        serialize(removing: removing, replacing: replacing)
    }

    func serialize(removing: Set<FieldPath>, replacing: FieldReplacements) -> [UInt8] {
        // Removal paths relative to this document's root.
        var relative = Set<FieldPath>()
        for path in removing where isWithin(path, orAt: true) {
            relative.insert(FieldPath(Array(path.segments.dropFirst(base.count))))
        }
        if relative.contains(FieldPath()) {
            switch json_object_get_type(root) {
            case json_type_object: return Array("{}".utf8)
            case json_type_array: return Array("[]".utf8)
            default: return Array("null".utf8)
            }
        }
        guard let root else { return Array("null".utf8) }
        // Nothing to remove or replace here (every field of an allowed share is sent): the tree is
        // printed as it is, under the lock that keeps concurrent prints off its buffer. A deep copy,
        // its print and its release cost ~18k instructions on a 324-byte push.
        if relative.isEmpty, embedded.isEmpty, !replacing.keys.contains(where: { isWithin($0, orAt: false) }) {
            return printing.withLock { _ in Self.print(root) }
        }
        var copy: OpaquePointer? = nil
        guard json_object_deep_copy(root, &copy, nil) == 0, let copy else {
            // Out of memory: never fall back to the caller's bytes.
            fatalError("json_object_deep_copy failed")
        }
        defer { json_object_put(copy) }

        // 1. Rewrite embedded documents that are kept.
        for (path, body) in embedded where !Self.isRemoved(path, in: relative) {
            guard let node = Self.resolve(copy, path[...]) else { continue }
            let inner = body.serialize(removing: removing, replacing: replacing)
            inner.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { chars in
                    _ = json_object_set_string_len(node, chars.baseAddress, Int32(chars.count))
                }
            }
        }

        // 2. Replace minimised leaves (before removals: array indices are still the original ones).
        for (path, values) in replacing where isWithin(path, orAt: false) {
            let segments = Array(path.segments.dropFirst(base.count))
            guard !Self.isRemoved(segments, in: relative), let last = segments.last,
                  let parent = Self.resolve(copy, segments.dropLast()), let node = Self.resolve(parent, [last][...]),
                  let current = Self.leafValue(node), let value = values[current],
                  let replacement = Self.newLeaf(value, like: current) else { continue }
            switch last {
            case .key(let key):
                _ = key.string.withCString { json_object_object_add(parent, $0, replacement) }
            case .index(let index):
                _ = json_object_array_put_idx(parent, index, replacement)
            }
        }

        // 3. Resolve every removal before mutating (no target is inside another).
        var memberRemovals: [(parent: OpaquePointer, key: ExactKey)] = []
        var indexRemovals: [OpaquePointer: [Int]] = [:]
        for path in relative where !Self.hasRemovedAncestor(path.segments, in: relative) {
            guard let last = path.segments.last,
                  let parent = Self.resolve(copy, path.segments.dropLast()) else { continue }
            switch last {
            case .key(let key):
                if json_object_get_type(parent) == json_type_object { memberRemovals.append((parent, key)) }
            case .index(let index):
                if json_object_get_type(parent) == json_type_array,
                   index >= 0, index < json_object_array_length(parent) {
                    indexRemovals[parent, default: []].append(index)
                }
            }
        }
        for (parent, key) in memberRemovals {
            key.string.withCString { json_object_object_del(parent, $0) }
        }
        for (parent, indices) in indexRemovals {
            for index in Set(indices).sorted(by: >) {
                _ = json_object_array_del_idx(parent, index, 1)
            }
        }

        // 4. Serialise.
        return Self.print(copy)
    }

    /// Whether `path` (of the outermost body) lies below this document's root, or is the root itself when `orAt`.
    private func isWithin(_ path: FieldPath, orAt: Bool) -> Bool {
        (orAt ? path.segments.count >= base.count : path.segments.count > base.count)
            && path.segments.prefix(base.count).elementsEqual(base)
    }

    /// The document's bytes as the broker sends them (plain, `/` unescaped).
    private static func print(_ node: OpaquePointer) -> [UInt8] {
        var length = 0
        guard let text = json_object_to_json_string_length(
            node, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &length) else {
            fatalError("json_object_to_json_string_length failed")
        }
        return Array(UnsafeRawBufferPointer(start: text, count: length))
    }

    /// A string or number leaf as a field value (numbers print as their source literal, see `Flattener`).
    private static func leafValue(_ node: OpaquePointer) -> FieldValue? {
        switch json_object_get_type(node) {
        case json_type_string:
            let bytes = UnsafeRawBufferPointer(start: json_object_get_string(node), count: Int(json_object_get_string_len(node)))
            return .string(String(decoding: bytes, as: UTF8.self))
        case json_type_int, json_type_double:
            var length = 0
            guard let text = json_object_to_json_string_length(node, JSON_C_TO_STRING_PLAIN, &length) else { return nil }
            return .number(String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self))
        default:
            return nil
        }
    }

    /// A new json-c leaf for `value`, of the same kind as the leaf it replaces; a number keeps its exact text.
    private static func newLeaf(_ value: FieldValue, like current: FieldValue) -> OpaquePointer? {
        switch (value, current) {
        case (.string(let text), .string):
            let bytes = Array(text.utf8)
            return bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { json_object_new_string_len($0.baseAddress, Int32($0.count)) }
            }
        case (.number(let text), .number):
            guard let double = Double(text) else { return nil }
            return json_object_new_double_s(double, text)
        default:
            return nil
        }
    }

    private static func isRemoved(_ path: [PathSegment], in set: Set<FieldPath>) -> Bool {
        for k in 0...path.count where set.contains(FieldPath(Array(path.prefix(k)))) { return true }
        return false
    }

    private static func hasRemovedAncestor(_ path: [PathSegment], in set: Set<FieldPath>) -> Bool {
        guard !path.isEmpty else { return false }
        for k in 0..<path.count where set.contains(FieldPath(Array(path.prefix(k)))) { return true }
        return false
    }

    /// The node at `path` below `node`, or nil if the path does not exist.
    static func resolve(_ node: OpaquePointer, _ path: ArraySlice<PathSegment>) -> OpaquePointer? {
        var current = node
        for segment in path {
            switch segment {
            case .key(let key):
                guard json_object_get_type(current) == json_type_object,
                      !key.string.utf8.contains(0) else { return nil }
                var child: OpaquePointer? = nil
                let found = key.string.withCString { json_object_object_get_ex(current, $0, &child) }
                guard found != 0, let child else { return nil }
                current = child
            case .index(let index):
                guard json_object_get_type(current) == json_type_array, index >= 0,
                      index < json_object_array_length(current),
                      let child = json_object_array_get_idx(current, index) else { return nil }
                current = child
            }
        }
        return current
    }
}

/// Iterative walk of a json-c tree producing the leaves in document order.
private struct Flattener {
    let source: UnsafeRawBufferPointer
    let numbers: [NumberSpan]
    let location: FieldLocation
    let limits: PayloadLimits
    let embeddedJSON: (FieldPath) -> Bool
    let base: [PathSegment]

    var fields: [FieldOccurrence] = []
    var embedded: [(path: [PathSegment], body: JSONBody)] = []
    private var numberIndex = 0
    /// Absolute path of the node being visited.
    private var path: [PathSegment]

    init(source: UnsafeRawBufferPointer, numbers: [NumberSpan], location: FieldLocation,
         limits: PayloadLimits, embeddedJSON: @escaping (FieldPath) -> Bool, base: [PathSegment]) {
        self.source = source
        self.numbers = numbers
        self.location = location
        self.limits = limits
        self.embeddedJSON = embeddedJSON
        self.base = base
        self.path = base
    }

    private enum Frame {
        case object(iterator: json_object_iterator, end: json_object_iterator, depth: Int)
        case array(node: OpaquePointer, next: Int, count: Int, depth: Int)
    }

    mutating func flatten(_ root: OpaquePointer?) throws(PayloadError) {
        var stack: [Frame] = []
        if let frame = try visit(root) { stack.append(frame) }
        while !stack.isEmpty {
            let top = stack.count - 1
            let child: OpaquePointer?
            switch stack[top] {
            case .object(var iterator, var end, let depth):
                if json_object_iter_equal(&iterator, &end) != 0 {
                    stack.removeLast()
                    continue
                }
                while path.count > depth { path.removeLast() }
                path.append(.key(ExactKey(String(cString: json_object_iter_peek_name(&iterator)))))
                child = json_object_iter_peek_value(&iterator)
                json_object_iter_next(&iterator)
                stack[top] = .object(iterator: iterator, end: end, depth: depth)
            case .array(let node, let next, let count, let depth):
                if next == count {
                    stack.removeLast()
                    continue
                }
                while path.count > depth { path.removeLast() }
                path.append(.index(next))
                child = json_object_array_get_idx(node, next)
                stack[top] = .array(node: node, next: next + 1, count: count, depth: depth)
            }
            if let frame = try visit(child) { stack.append(frame) }
        }
    }

    /// Emits a leaf, or returns the frame to iterate a non-empty container.
    private mutating func visit(_ node: OpaquePointer?) throws(PayloadError) -> Frame? {
        switch json_object_get_type(node) {
        case json_type_object:
            if json_object_object_length(node) == 0 {
                emit(.emptyObject)
                return nil
            }
            return .object(iterator: json_object_iter_begin(node), end: json_object_iter_end(node), depth: path.count)
        case json_type_array:
            let count = json_object_array_length(node)
            if count == 0 {
                emit(.emptyArray)
                return nil
            }
            return .array(node: node!, next: 0, count: count, depth: path.count)
        case json_type_string:
            let length = Int(json_object_get_string_len(node))
            let bytes = UnsafeRawBufferPointer(start: json_object_get_string(node), count: length)
            let fieldPath = FieldPath(path)
            if embeddedJSON(fieldPath) {
                try embed(bytes, at: fieldPath)
            } else {
                emit(.string(String(decoding: bytes, as: UTF8.self)))
            }
        case json_type_int, json_type_double:
            try number(node!)
        case json_type_boolean:
            emit(.bool(json_object_get_boolean(node) != 0))
        default:
            emit(.null)
        }
        return nil
    }

    private mutating func emit(_ value: FieldValue) {
        fields.append(FieldOccurrence(location: location, path: FieldPath(path), value: value))
    }

    /// The number json-c will print must be byte-for-byte its source literal.
    private mutating func number(_ node: OpaquePointer) throws(PayloadError) {
        guard numberIndex < numbers.count else {
            throw PayloadError(code: .malformedBody,
                               message: "number without a matching source literal", offset: nil)
        }
        let span = numbers[numberIndex]
        numberIndex += 1
        var length = 0
        let printed = json_object_to_json_string_length(node, JSON_C_TO_STRING_PLAIN, &length)
        let literal = UnsafeRawBufferPointer(rebasing: source[span.start..<span.end])
        guard let printed, length == literal.count,
              memcmpEqual(UnsafeRawPointer(printed).assumingMemoryBound(to: UInt8.self),
                          literal.baseAddress!.assumingMemoryBound(to: UInt8.self), length) else {
            throw PayloadError.malformed("number cannot be re-serialised exactly", at: span.start)
        }
        emit(.number(String(decoding: literal, as: UTF8.self)))
    }

    private mutating func embed(_ bytes: UnsafeRawBufferPointer, at fieldPath: FieldPath) throws(PayloadError) {
        do throws(PayloadError) {
            let parsed = try JSONBody.parse(bytes, limits: limits, location: location,
                                            embeddedJSON: embeddedJSON, base: path)
            let body = JSONBody(embeddedParsed: parsed)
            fields.append(contentsOf: body.fields)
            embedded.append((Array(path.dropFirst(base.count)), body))
        } catch {
            throw PayloadError.embedded(error, at: fieldPath)
        }
    }
}

extension JSONBody {
    convenience init(embeddedParsed: Parsed) {
        self.init(embeddedParsed)
    }
}

extension PayloadError {
    /// Wraps an error found inside an embedded document: names the (adapter-declared)
    /// path of the embedding field and the offset inside its decoded value.
    static func embedded(_ inner: PayloadError, at path: FieldPath) -> PayloadError {
        let field = path.segments.isEmpty ? "the top-level value" : "field \(path)"
        var message = "\(field) holds an invalid embedded JSON document: \(inner.message)"
        if inner.offset != nil { message += " of the decoded value" }
        return PayloadError(code: .malformedBody, message: message, offset: nil)
    }
}
