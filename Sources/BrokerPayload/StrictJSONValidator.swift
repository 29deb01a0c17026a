/// Source span of one number literal, in document order.
struct NumberSpan {
    var start: Int
    var end: Int
}

/// Single-pass, non-recursive strict JSON validator (RFC 8259 plus the broker's rules).
///
/// Why: json-c is lenient where it matters for a privacy gateway (it keeps the last of
/// duplicate keys, accepts `NaN`, `1.`, raw control characters, lone surrogate escapes,
/// saturates out-of-range integers, truncates keys at `\u0000`). The validator runs
/// first over the raw bytes and refuses everything json-c would read differently from
/// another parser, so that the tree json-c builds is the only reading of the body.
///
/// Invariants after `run()` returns: the bytes are one JSON value plus optional
/// whitespace; all strings are valid UTF-8 with valid escapes and paired surrogates;
/// no object has two keys that are equal as bytes after unescaping; no key contains
/// U+0000; nesting is at most `maxDepth`; every integer literal is in
/// Int64.min...UInt64.max; no number is negative zero (`-0`, `-0.0`), overflows a Double,
/// or underflows to zero or a subnormal.
/// `numbers` holds the span of every number literal in document order.
struct StrictJSONValidator {
    private struct Frame {
        var isObject: Bool
        var keyEntryStart: Int
        var keyStoreStart: Int
        var hashes: Set<Int>?
    }

    private struct KeyEntry {
        var start: Int
        var count: Int
        var hash: Int
    }

    private let buf: UnsafeRawBufferPointer
    private let n: Int
    private let maxDepth: Int
    private var i = 0
    private var frames: [Frame] = []
    private var keyStore: [UInt8] = []
    private var keyEntries: [KeyEntry] = []
    private(set) var numbers: [NumberSpan] = []
    /// Deepest nesting met in the document (<= maxDepth once `run()` returned).
    private(set) var deepest = 0

    /// Objects with more keys than this switch from a linear scan to a hash set.
    private static let linearKeyLimit = 16

    /// Leaf values (scalars and empty containers) seen so far; past `maxLeaves` the body is refused at once.
    private(set) var leaves = 0
    private var maxLeaves = Int.max

    init(_ buf: UnsafeRawBufferPointer, maxDepth: Int, maxLeaves: Int) {
        self.maxLeaves = maxLeaves
        self.buf = buf
        self.n = buf.count
        self.maxDepth = maxDepth
        frames.reserveCapacity(max(0, min(maxDepth, 64)))
    }

    @inline(__always)
    private func fail(_ what: String, at offset: Int) -> PayloadError {
        PayloadError.malformed(what, at: offset)
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while i < n {
            switch buf[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i &+= 1
            default: return
            }
        }
    }

    mutating func run() throws(PayloadError) {
        if n == 0 { throw fail("empty body", at: 0) }
        if n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF {
            throw fail("byte order mark (U+FEFF) before the JSON value", at: 0)
        }
        // false: a value is expected next; true: a value has just ended.
        var afterValue = false
        while true {
            skipWhitespace()
            if !afterValue {
                guard i < n else {
                    throw fail(frames.isEmpty ? "no JSON value (only whitespace)" : "unexpected end of input, a value was expected", at: i)
                }
                let b = buf[i]
                // Counted as values start (an empty container is one leaf, a non-empty one none: its
                // contents are counted), so a body of a million tiny fields is refused before json-c sees it.
                if b != UInt8(ascii: "{") && b != UInt8(ascii: "[") || isEmptyContainer(at: i) {
                    leaves &+= 1
                    if leaves > maxLeaves {
                        throw PayloadError(code: .tooManyFields, message: "the body has more than \(maxLeaves) fields", offset: i)
                    }
                }
                switch b {
                case UInt8(ascii: "{"):
                    try push(isObject: true)
                    i &+= 1
                    skipWhitespace()
                    if i < n && buf[i] == UInt8(ascii: "}") {
                        i &+= 1
                        pop()
                        afterValue = true
                    } else {
                        try member()
                    }
                case UInt8(ascii: "["):
                    try push(isObject: false)
                    i &+= 1
                    skipWhitespace()
                    if i < n && buf[i] == UInt8(ascii: "]") {
                        i &+= 1
                        pop()
                        afterValue = true
                    }
                case UInt8(ascii: "\""):
                    try scanString(isKey: false)
                    afterValue = true
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    try scanNumber()
                    afterValue = true
                case UInt8(ascii: "t"):
                    try literal("true")
                    afterValue = true
                case UInt8(ascii: "f"):
                    try literal("false")
                    afterValue = true
                case UInt8(ascii: "n"):
                    try literal("null")
                    afterValue = true
                default:
                    throw unexpected(at: i, expecting: "a value")
                }
            } else {
                guard let top = frames.last else {
                    if i == n { return }
                    if buf[i] == UInt8(ascii: "/") {
                        throw fail("comment (not allowed in JSON): trailing data after the top-level JSON value", at: i)
                    }
                    throw fail("trailing data after the top-level JSON value", at: i)
                }
                guard i < n else {
                    throw fail(top.isObject ? "unterminated object" : "unterminated array", at: i)
                }
                let b = buf[i]
                if b == UInt8(ascii: ",") {
                    i &+= 1
                    skipWhitespace()
                    if i < n && (buf[i] == UInt8(ascii: "}") || buf[i] == UInt8(ascii: "]")) {
                        throw fail("trailing comma", at: i)
                    }
                    if top.isObject {
                        try member()
                    }
                    afterValue = false
                } else if top.isObject && b == UInt8(ascii: "}") || !top.isObject && b == UInt8(ascii: "]") {
                    i &+= 1
                    pop()
                } else {
                    throw unexpected(at: i, expecting: top.isObject ? "',' or '}'" : "',' or ']'")
                }
            }
        }
    }

    /// Whether the container opening at `at` closes right away (whitespace aside).
    private func isEmptyContainer(at: Int) -> Bool {
        var k = at &+ 1
        while k < n, buf[k] == 0x20 || buf[k] == 0x09 || buf[k] == 0x0A || buf[k] == 0x0D { k &+= 1 }
        return k < n && (buf[k] == UInt8(ascii: "}") || buf[k] == UInt8(ascii: "]"))
    }

    /// Parses `"key" :` of an object member (whitespace before the key already skipped);
    /// on return a value is expected.
    private mutating func member() throws(PayloadError) {
        guard i < n else { throw fail("unterminated object", at: i) }
        guard buf[i] == UInt8(ascii: "\"") else {
            throw unexpected(at: i, expecting: "a double-quoted object key")
        }
        let keyOffset = i
        let keyStart = keyStore.count
        try scanString(isKey: true)
        try checkDuplicate(keyOffset: keyOffset, start: keyStart)
        skipWhitespace()
        guard i < n, buf[i] == UInt8(ascii: ":") else {
            throw unexpected(at: i, expecting: "':' after an object key")
        }
        i &+= 1
    }

    private mutating func push(isObject: Bool) throws(PayloadError) {
        if frames.count >= maxDepth {
            throw fail("nesting depth exceeds the limit of \(maxDepth)", at: i)
        }
        deepest = max(deepest, frames.count + 1)
        frames.append(Frame(isObject: isObject, keyEntryStart: keyEntries.count,
                            keyStoreStart: keyStore.count, hashes: nil))
    }

    private mutating func pop() {
        let frame = frames.removeLast()
        if frame.isObject {
            keyEntries.removeSubrange(frame.keyEntryStart...)
            keyStore.removeSubrange(frame.keyStoreStart...)
        }
    }

    private func unexpected(at offset: Int, expecting: String) -> PayloadError {
        guard offset < n else { return fail("unexpected end of input, expected \(expecting)", at: offset) }
        let what: String
        switch buf[offset] {
        case UInt8(ascii: "/"): what = "comment (not allowed in JSON)"
        case UInt8(ascii: "'"): what = "single-quoted string (not allowed in JSON)"
        case UInt8(ascii: "N"): what = "NaN (not allowed in JSON)"
        case UInt8(ascii: "I"): what = "Infinity (not allowed in JSON)"
        case UInt8(ascii: "}"), UInt8(ascii: "]"): what = "unexpected closing bracket"
        case 0x80...0xFF: what = "unexpected non-ASCII byte outside a string"
        default: what = "unexpected character"
        }
        return fail("\(what), expected \(expecting)", at: offset)
    }

    private mutating func literal(_ word: StaticString) throws(PayloadError) {
        let count = word.utf8CodeUnitCount
        let start = word.utf8Start
        guard n - i >= count else { throw fail("invalid literal", at: i) }
        for k in 0..<count where buf[i &+ k] != start[k] {
            throw fail("invalid literal", at: i)
        }
        i &+= count
    }

    // MARK: Strings

    @inline(__always)
    private func isHex(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
    }

    @inline(__always)
    private func hexValue(_ b: UInt8) -> UInt32 {
        if b <= 0x39 { return UInt32(b &- 0x30) }
        return UInt32((b | 0x20) &- 0x61 &+ 10)
    }

    /// Four hex digits at `at`, or nil.
    private func hex4(at: Int) -> UInt32? {
        guard n - at >= 4 else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 {
            let b = buf[at &+ k]
            guard isHex(b) else { return nil }
            v = v << 4 | hexValue(b)
        }
        return v
    }

    private mutating func appendScalar(_ cp: UInt32) {
        if cp < 0x80 {
            keyStore.append(UInt8(cp))
        } else if cp < 0x800 {
            keyStore.append(UInt8(0xC0 | cp >> 6))
            keyStore.append(UInt8(0x80 | cp & 0x3F))
        } else if cp < 0x10000 {
            keyStore.append(UInt8(0xE0 | cp >> 12))
            keyStore.append(UInt8(0x80 | cp >> 6 & 0x3F))
            keyStore.append(UInt8(0x80 | cp & 0x3F))
        } else {
            keyStore.append(UInt8(0xF0 | cp >> 18))
            keyStore.append(UInt8(0x80 | cp >> 12 & 0x3F))
            keyStore.append(UInt8(0x80 | cp >> 6 & 0x3F))
            keyStore.append(UInt8(0x80 | cp & 0x3F))
        }
    }

    /// Scans a string starting at the opening quote. Keys are unescaped into `keyStore`.
    private mutating func scanString(isKey: Bool) throws(PayloadError) {
        let open = i
        i &+= 1
        while true {
            guard i < n else { throw fail("unterminated string (opened at byte offset \(open))", at: i) }
            let b = buf[i]
            if b == UInt8(ascii: "\"") {
                i &+= 1
                return
            } else if b == UInt8(ascii: "\\") {
                try scanEscape(isKey: isKey)
            } else if b < 0x20 {
                throw fail("unescaped control character in a string", at: i)
            } else if b < 0x80 {
                if isKey { keyStore.append(b) }
                i &+= 1
            } else {
                let len = try utf8SequenceLength(at: i)
                if isKey {
                    for k in 0..<len { keyStore.append(buf[i &+ k]) }
                }
                i &+= len
            }
        }
    }

    /// Validates one multi-byte UTF-8 sequence (lead byte >= 0x80) and returns its length.
    private func utf8SequenceLength(at p: Int) throws(PayloadError) -> Int {
        let lead = buf[p]
        let len: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: len = 2
        case 0xE0: len = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: len = 3
        case 0xED: len = 3; hi = 0x9F          // U+D800...U+DFFF are not scalar values
        case 0xF0: len = 4; lo = 0x90
        case 0xF1...0xF3: len = 4
        case 0xF4: len = 4; hi = 0x8F          // nothing above U+10FFFF
        case 0xC0, 0xC1: throw fail("invalid UTF-8 (overlong encoding)", at: p)
        case 0x80...0xBF: throw fail("invalid UTF-8 (unexpected continuation byte)", at: p)
        default: throw fail("invalid UTF-8 (byte that never appears in UTF-8)", at: p)
        }
        guard n - p >= len else { throw fail("invalid UTF-8 (truncated sequence)", at: p) }
        let second = buf[p &+ 1]
        guard second >= lo && second <= hi else {
            if second & 0xC0 != 0x80 { throw fail("invalid UTF-8 (truncated sequence)", at: p) }
            if lead == 0xED { throw fail("invalid UTF-8 (encoded UTF-16 surrogate)", at: p) }
            if lead == 0xF4 { throw fail("invalid UTF-8 (code point above U+10FFFF)", at: p) }
            throw fail("invalid UTF-8 (overlong encoding)", at: p)
        }
        for k in 2..<max(2, len) where buf[p &+ k] & 0xC0 != 0x80 {
            throw fail("invalid UTF-8 (truncated sequence)", at: p)
        }
        return len
    }

    private mutating func scanEscape(isKey: Bool) throws(PayloadError) {
        let at = i
        guard i &+ 1 < n else { throw fail("unterminated escape sequence", at: at) }
        let c = buf[i &+ 1]
        var plain: UInt8 = 0
        switch c {
        case UInt8(ascii: "\""): plain = 0x22
        case UInt8(ascii: "\\"): plain = 0x5C
        case UInt8(ascii: "/"): plain = 0x2F
        case UInt8(ascii: "b"): plain = 0x08
        case UInt8(ascii: "f"): plain = 0x0C
        case UInt8(ascii: "n"): plain = 0x0A
        case UInt8(ascii: "r"): plain = 0x0D
        case UInt8(ascii: "t"): plain = 0x09
        case UInt8(ascii: "u"):
            guard let unit = hex4(at: i &+ 2) else { throw fail("invalid \\u escape (four hex digits expected)", at: at) }
            var cp = unit
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard n - i >= 12, buf[i &+ 6] == UInt8(ascii: "\\"), buf[i &+ 7] == UInt8(ascii: "u"),
                      let low = hex4(at: i &+ 8), low >= 0xDC00 && low <= 0xDFFF else {
                    throw fail("unpaired UTF-16 high surrogate escape", at: at)
                }
                cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                i &+= 12
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw fail("unpaired UTF-16 low surrogate escape", at: at)
            } else {
                i &+= 6
            }
            if isKey {
                if cp == 0 { throw fail("object key contains U+0000 (json-c would truncate it)", at: at) }
                appendScalar(cp)
            }
            return
        default:
            throw fail("invalid escape sequence", at: at)
        }
        if isKey { keyStore.append(plain) }
        i &+= 2
    }

    /// Checks the key just unescaped into `keyStore[start...]` against the other
    /// keys of the innermost object.
    private mutating func checkDuplicate(keyOffset: Int, start: Int) throws(PayloadError) {
        let frameIndex = frames.count - 1
        let entryStart = frames[frameIndex].keyEntryStart
        let count = keyStore.count - start
        let hash = keyStore.withUnsafeBytes { all -> Int in
            var hasher = Hasher()
            hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: all[start..<(start + count)]))
            return hasher.finalize()
        }
        let existing = keyEntries.count - entryStart
        var mayCollide = true
        if existing >= Self.linearKeyLimit {
            if frames[frameIndex].hashes == nil {
                var set = Set<Int>(minimumCapacity: existing * 2)
                for e in keyEntries[entryStart...] { set.insert(e.hash) }
                frames[frameIndex].hashes = set
            }
            mayCollide = !frames[frameIndex].hashes!.insert(hash).inserted
        }
        if mayCollide {
            let duplicate = keyStore.withUnsafeBufferPointer { all -> Bool in
                for e in keyEntries[entryStart...] where e.hash == hash && e.count == count {
                    if count == 0 || memcmpEqual(all.baseAddress! + e.start, all.baseAddress! + start, count) {
                        return true
                    }
                }
                return false
            }
            if duplicate { throw fail("duplicate object key", at: keyOffset) }
        }
        keyEntries.append(KeyEntry(start: start, count: count, hash: hash))
    }

    // MARK: Numbers

    @inline(__always)
    private func isDigit(_ k: Int) -> Bool {
        k < n && buf[k] >= 0x30 && buf[k] <= 0x39
    }

    private mutating func scanNumber() throws(PayloadError) {
        let start = i
        let negative = buf[i] == UInt8(ascii: "-")
        if negative {
            i &+= 1
            if i < n && buf[i] == UInt8(ascii: "I") { throw fail("-Infinity (not allowed in JSON)", at: start) }
        }
        let intStart = i
        guard isDigit(i) else { throw fail("invalid number (digit expected)", at: i) }
        if buf[i] == UInt8(ascii: "0") {
            i &+= 1
            if isDigit(i) { throw fail("invalid number (leading zero)", at: start) }
        } else {
            while isDigit(i) { i &+= 1 }
        }
        let intEnd = i
        var fracStart = i, fracEnd = i
        var isInteger = true
        if i < n && buf[i] == UInt8(ascii: ".") {
            isInteger = false
            i &+= 1
            fracStart = i
            guard isDigit(i) else { throw fail("invalid number (digit expected after '.')", at: i) }
            while isDigit(i) { i &+= 1 }
            fracEnd = i
        }
        var exponent = 0
        if i < n && (buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E")) {
            isInteger = false
            i &+= 1
            var expNegative = false
            if i < n && (buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-")) {
                expNegative = buf[i] == UInt8(ascii: "-")
                i &+= 1
            }
            guard isDigit(i) else { throw fail("invalid number (digit expected in exponent)", at: i) }
            while isDigit(i) {
                if exponent < 1_000_000_000 { exponent = exponent * 10 + Int(buf[i] &- 0x30) }
                i &+= 1
            }
            if expNegative { exponent = -exponent }
        }
        let digits = intEnd - intStart
        if isInteger {
            // json-c prints integers itself (int64 / uint64) and silently saturates
            // out-of-range values; only canonical in-range literals survive unchanged.
            if negative {
                if digits == 1 && buf[intStart] == UInt8(ascii: "0") {
                    throw fail("number -0 (negative zero) cannot be re-serialised exactly", at: start)
                }
                if digits > 19 || (digits == 19 && !digitsAtMost(intStart, "9223372036854775808")) {
                    throw fail("integer below the 64-bit range", at: start)
                }
            } else if digits > 20 || (digits == 20 && !digitsAtMost(intStart, "18446744073709551615")) {
                throw fail("integer above the 64-bit range", at: start)
            }
        } else {
            // Decimal magnitude: value = 0.d1d2... x 10^(magnitude + exponent).
            var magnitude: Int? = nil
            if !(digits == 1 && buf[intStart] == UInt8(ascii: "0")) {
                magnitude = digits
            } else {
                var k = fracStart
                while k < fracEnd && buf[k] == UInt8(ascii: "0") { k &+= 1 }
                if k < fracEnd { magnitude = -(k - fracStart) }
            }
            // One rule for every number: it leaves as the bytes it came in, and those bytes mean to any
            // IEEE-754 reader the value they say. So negative zero (`-0.0`, `-0e0`: readers disagree on
            // its sign) is refused like `-0`, and so is a non-zero literal that overflows to infinity or
            // underflows to zero or a subnormal (`1e-400` would reach the provider as 0).
            guard let magnitude else {
                if negative { throw fail("number -0 (negative zero) cannot be re-serialised exactly", at: start) }
                numbers.append(NumberSpan(start: start, end: i))
                return
            }
            // Between 10^-307 and 10^308 a Double is always finite and normal; outside, ask strtod.
            if magnitude + exponent >= 309 || magnitude + exponent <= -306 {
                let value = parsedDouble(start, i).magnitude
                if !value.isFinite { throw fail("number overflows a double", at: start) }
                if value < Double.leastNormalMagnitude { throw fail("number underflows a double", at: start) }
            }
        }
        numbers.append(NumberSpan(start: start, end: i))
    }

    /// Whether the `limit.count` digits at `at` are <= `limit` (same length).
    private func digitsAtMost(_ at: Int, _ limit: StaticString) -> Bool {
        let p = limit.utf8Start
        for k in 0..<limit.utf8CodeUnitCount {
            let a = buf[at &+ k], b = p[k]
            if a != b { return a < b }
        }
        return true
    }

    private func parsedDouble(_ start: Int, _ end: Int) -> Double {
        var text = [CChar](repeating: 0, count: end - start + 1)
        for k in start..<end { text[k - start] = CChar(bitPattern: buf[k]) }
        return strtod(text, nil)
    }
}

@inline(__always)
func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    memcmp(a, b, count) == 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
