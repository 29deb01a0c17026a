import BrokerFields

/// Finds personal data in the value of a field declared non-personal: the second layer behind the
/// adapters' own `pattern`s, because a label is a claim and a leak under a harmless label is still a leak.
///
/// It looks for what can be told apart from technical values with a checksum or a tight shape:
/// a PRC resident ID number (18 characters, a province code, a plausible birth date and the ISO 7064
/// MOD 11-2 check character), a mainland mobile number (`1[3-9]` and nine digits, alone in its digit
/// run, or after `86`), an e-mail address, an IPv4 or IPv6 literal, a coordinate pair (two decimals with
/// at least four fraction digits, latitude and longitude in range), and a bank card number (13–19 digits
/// with a card network's leading digits and a valid Luhn sum). Each is found written plainly,
/// percent-encoded, or inside a run of base64 (standard or URL alphabet, at any of the four alignments).
///
/// Pure and cheap, with no regular expression and no allocation: a triage pass counts what a finding
/// needs (a long digit run, dots, colons, `@`, `%`, 8 base64 characters in a row), so short codes
/// (`86400s`, `HIGH`, `10086`) cost a few comparisons per byte. A value that passes triage is read
/// again by every detector at once (a few integers of state each); a base64 run of 8 characters or
/// more is read a third time by the four decoding lanes together.
///
/// Technical values pass: push tokens, request ids, TTLs, timestamps and version strings. Digit runs
/// must have exactly the right length (a digit run inside a long hex id is not a number), and the
/// checksums let through about one random run in ten (cards, which must also start like one) or far
/// fewer (ID numbers, which must also hold a province and a date).
public enum PersonalDataDetector {
    /// What was found: named in the decision's message and documentation, never with the value.
    public enum Finding: String, Sendable, Hashable, CaseIterable {
        case residentID = "prc_resident_id"
        case mobileNumber = "mainland_mobile_number"
        case email = "email_address"
        case ipAddress = "ip_address"
        case coordinates = "coordinate_pair"
        case bankCard = "bank_card_number"

        /// Found in one run of digits (judged with the word around it).
        var isDigitRun: Bool { self == .residentID || self == .mobileNumber || self == .bankCard }

        /// The words a message uses.
        public var label: String {
            switch self {
            case .residentID: return "a PRC resident ID number"
            case .mobileNumber: return "a mainland mobile number"
            case .email: return "an e-mail address"
            case .ipAddress: return "an IP address"
            case .coordinates: return "a coordinate pair"
            case .bankCard: return "a bank card number"
            }
        }
    }

    /// The first personal datum in `value`, if any (strings and numbers; other values hold none).
    @inline(__always)
    public static func scan(_ value: FieldValue) -> Finding? {
        switch value {
        case .string(let text), .number(let text): return scan(text)
        case .bool, .null, .emptyObject, .emptyArray: return nil
        }
    }

    /// The first personal datum in a key the caller chose: one that `pattern` matches with a wildcard
    /// (`options.*`). Keys are forwarded as much as values are.
    public static func scanKeys(of path: FieldPath, under pattern: FieldPattern) -> Finding? {
        for (declared, segment) in zip(pattern.segments, path.segments) {
            guard case .anyKey = declared, case .key(let key) = segment else { continue }
            if let found = scan(key.string) { return found }
        }
        return nil
    }

    /// The first personal datum in `text`, if any.
    public static func scan(_ text: String) -> Finding? {
        // Native strings (every decoded value) lend their bytes without a copy.
        if let found = text.utf8.withContiguousStorageIfAvailable({ scan(bytes: $0) }) { return found }
        var copy = text
        return copy.withUTF8 { scan(bytes: $0) }
    }

    /// A triage pass that only counts (digit runs, dots, colons, `@`, `%`, base64 runs), then, for a
    /// value that could hold something, one scan with every detector.
    public static func scan(bytes: UnsafeBufferPointer<UInt8>) -> Finding? {
        guard mayHold(bytes) else { return nil }
        return detect(bytes)
    }

    /// Whether any detector could fire: a run of 11 digits or more, an IPv4-like or coordinate-like count
    /// of digits and dots, two colons, an `@`, a `%`, or 8 characters of base64 in a row. Most technical
    /// values (`86400s`, `HIGH`, `10086`, `-1`) stop here after a few comparisons per byte.
    @inline(__always)
    static func mayHold(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var digits = 0, run = 0, longest = 0, dots = 0, colons = 0, base64 = 0
        for byte in bytes {
            if isDigit(byte) {
                digits += 1
                run += 1
                if run > longest { longest = run }
                base64 += 1
            } else {
                run = 0
                switch byte {
                case UInt8(ascii: "@"), UInt8(ascii: "%"): return true
                case UInt8(ascii: "."): dots += 1; base64 = 0
                case UInt8(ascii: ":"): colons += 1; base64 = 0
                default: base64 = Base64Lanes.sextet(byte) == nil ? 0 : base64 + 1
                }
            }
            if base64 >= 8 { return true }
        }
        return longest >= 11 || (dots >= 3 && digits >= 4) || (dots >= 2 && digits >= 10) || colons >= 2
    }

    /// Each byte, percent-decoded, goes to the plain scanner; a run of base64 8 characters or longer is
    /// then decoded by `Base64Lanes` (its bytes are read a second time, by the four lanes at once).
    static func detect(_ bytes: UnsafeBufferPointer<UInt8>) -> Finding? {
        var plain = TokenScanner()
        var runStart = 0, run = 0
        var index = 0
        let count = bytes.count
        while index < count {
            let at = index
            let byte = decoded(bytes, &index)
            if let found = plain.feed(byte) { return found }
            if Base64Lanes.sextet(byte) != nil {
                if run == 0 { runStart = at }
                run += 1
            } else {
                if run >= 8, let found = Base64Lanes.scan(UnsafeBufferPointer(rebasing: bytes[runStart..<at])) { return found }
                run = 0
            }
        }
        if let found = plain.finish() { return found }
        return run >= 8 ? Base64Lanes.scan(UnsafeBufferPointer(rebasing: bytes[runStart..<count])) : nil
    }

    /// The byte at `index`, a `%XX` escape decoded; advances `index` past it.
    @inline(__always)
    static func decoded(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) -> UInt8 {
        let byte = bytes[index]
        index += 1
        if byte == UInt8(ascii: "%"), index + 1 < bytes.count, let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) {
            index += 2
            return high << 4 | low
        }
        return byte
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        default: return nil
        }
    }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- UInt8(ascii: "a") < 26 }
    @inline(__always) static func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
    @inline(__always) static func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20) &- UInt8(ascii: "a") < 6 }
}

// MARK: - The plain scanner

extension PersonalDataDetector {
    /// The detectors over one byte stream (the value, or one base64 lane of it).
    struct TokenScanner {
        var numbers = NumberTokens()
        var email = EmailTracker()
        var ipv6 = IPv6Tracker()
        var previous: UInt8 = 0
        /// The current run of letters and digits: its length, whether it is hex of one case so far, how many
        /// hex letters it has. A digit run inside a long hex string (a digest, a trace id) is not a number.
        var wordLength = 0
        var lowerHex = true, upperHex = true
        var hexLetters = 0
        /// A digit-run finding inside a word that is hex so far: reported unless the word ends as a hex id.
        var deferred: Finding?
        /// The last byte was inert and left every tracker at rest: another inert byte changes nothing.
        var quiet = false

        /// Neither part of a word nor a joint of one (`.`, `:`, `@`, `-`, `+`, `_`): ends whatever was open.
        /// Most bytes of decoded binary are inert; a run of them costs a comparison each.
        @inline(__always)
        static func isInert(_ byte: UInt8) -> Bool {
            !PersonalDataDetector.isAlnum(byte) && byte != UInt8(ascii: ".") && byte != UInt8(ascii: ":")
                && byte != UInt8(ascii: "@") && byte != UInt8(ascii: "-") && byte != UInt8(ascii: "+") && byte != UInt8(ascii: "_")
        }

        @inline(__always)
        mutating func feed(_ byte: UInt8) -> Finding? {
            let inert = Self.isInert(byte)
            if inert && quiet {
                previous = byte
                return nil
            }
            // After an inert byte every tracker is reset; only a decimal waiting for its pair counts on.
            defer { quiet = inert && numbers.decimal == nil }
            let before = previous
            previous = byte
            let letterOrDigit = PersonalDataDetector.isAlnum(byte)
            if letterOrDigit {
                wordLength += 1
                if !PersonalDataDetector.isDigit(byte) {
                    if byte &- UInt8(ascii: "a") < 6 { hexLetters += 1; upperHex = false }
                    else if byte &- UInt8(ascii: "A") < 6 { hexLetters += 1; lowerHex = false }
                    else { lowerHex = false; upperHex = false }
                }
            }
            if let found = numbers.feed(byte, previous: before) {
                guard found.isDigitRun, lowerHex || upperHex else { return found }
                if letterOrDigit {
                    deferred = deferred ?? found
                } else if let kept = judgeWord(found) {
                    return kept
                }
            }
            if let waiting = deferred, !(lowerHex || upperHex) { return waiting }
            if !letterOrDigit, let found = endWord() { return found }
            if email.feed(byte) { return .email }
            if ipv6.feed(byte, previous: before) { return .ipAddress }
            return nil
        }

        /// A digit-run finding stands unless its word is a hex id: 20 or more characters, two hex letters or more.
        @inline(__always)
        func judgeWord(_ found: Finding) -> Finding? {
            (lowerHex || upperHex) && wordLength >= 20 && hexLetters >= 2 ? nil : found
        }

        /// The word ended: what it deferred, if it stands; then a new word.
        @inline(__always)
        mutating func endWord() -> Finding? {
            let found = deferred.flatMap(judgeWord)
            wordLength = 0; lowerHex = true; upperHex = true; hexLetters = 0; deferred = nil
            return found
        }

        mutating func finish() -> Finding? {
            if let found = numbers.end(boundary: 0) {
                if !found.isDigitRun { return found }
                if let kept = judgeWord(found) { return kept }
            }
            if let found = endWord() { return found }
            if email.finish() { return .email }
            if ipv6.end(boundary: 0) { return .ipAddress }
            return nil
        }
    }

    /// Runs of digits joined by single dots: a lone run is judged as an ID, phone or card number,
    /// two runs as a decimal (half of a coordinate pair), four as an IPv4 address.
    struct NumberTokens {
        /// Dot-separated digit groups in the current token (0: no token).
        var groups = 0
        /// The byte before the token (a letter before `1.2.3.4` makes it a version, not an address).
        var before: UInt8 = 0
        var length = 0
        /// The group's value (its first 19 digits).
        var value: UInt64 = 0
        var firstGroupLength = 0
        var firstGroupValue: UInt64 = 0
        var fractionNonZero = false
        /// Every closed group is an IPv4 octet (1–3 digits, ≤ 255, no leading zero).
        var octets = true
        /// Luhn sums, doubling the even or the odd positions from the left (the length decides which applies).
        var luhnEven = 0, luhnOdd = 0
        /// The ID number's weighted sum over its first 17 digits.
        var weighted = 0
        var pendingDot = false
        /// 17 digits and an `X`: an ID number whose check character is 10, if no digit follows.
        var pendingX = false
        /// The last decimal that could be half of a coordinate pair: whether it fits a latitude, a
        /// longitude, whether it is at least 1 in size, and how many bytes have passed since.
        var decimal: (latitude: Bool, longitude: Bool, whole: Bool)?
        var gap = 0

        static let weights: [Int] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]

        @inline(__always)
        mutating func feed(_ byte: UInt8, previous: UInt8) -> Finding? {
            if PersonalDataDetector.isDigit(byte) {
                if pendingX {
                    // `…X1`: the X was a letter inside something longer; a new run starts after it.
                    pendingX = false
                    reset()
                }
                if groups == 0 {
                    groups = 1
                    before = previous
                    startGroup()
                } else if pendingDot {
                    closeGroup()
                    groups += 1
                    pendingDot = false
                    startGroup()
                }
                let digit = Int(byte &- UInt8(ascii: "0"))
                if length < 19 { value = value &* 10 &+ UInt64(digit) }
                if length < 17 { weighted &+= digit &* Self.weights[length] }
                let doubled = digit < 5 ? digit * 2 : digit * 2 - 9
                if length & 1 == 0 { luhnEven &+= doubled; luhnOdd &+= digit } else { luhnEven &+= digit; luhnOdd &+= doubled }
                length += 1
                return nil
            }
            if byte == UInt8(ascii: "."), groups > 0, !pendingDot, !pendingX {
                pendingDot = true
                return nil
            }
            if byte | 0x20 == UInt8(ascii: "x"), groups == 1, length == 17, !pendingDot, !pendingX {
                pendingX = true
                return nil
            }
            if groups > 0, let found = end(boundary: byte) { return found }
            if decimal != nil {
                gap += 1
                if gap > 8 { decimal = nil }
            }
            return nil
        }

        @inline(__always)
        mutating func startGroup() {
            length = 0
            value = 0
            luhnEven = 0
            luhnOdd = 0
        }

        mutating func closeGroup() {
            if groups == 1 { firstGroupLength = length; firstGroupValue = value }
            if groups == 2 { fractionNonZero = value != 0 }
            if length > 3 || value > 255 || (length > 1 && value < (length == 2 ? 10 : 100)) { octets = false }
        }

        mutating func reset() {
            groups = 0
            pendingDot = false
            pendingX = false
            octets = true
            weighted = 0
        }

        /// The token ends before `boundary` (0 at the end of the value): judge it.
        mutating func end(boundary: UInt8) -> Finding? {
            guard groups > 0 else { return nil }
            defer { reset() }
            if pendingX {
                return Self.isResidentID(digits: value, checkValue: 10, weighted: weighted, length: 17) ? .residentID : nil
            }
            closeGroup()
            switch groups {
            case 1:
                decimal = nil
                return judgeRun()
            case 2:
                return judgeDecimal()
            case 4:
                decimal = nil
                let versionLike = PersonalDataDetector.isAlpha(before) || before == UInt8(ascii: ".")
                return octets && !versionLike ? .ipAddress : nil
            default:
                decimal = nil
                return nil
            }
        }

        /// A lone digit run: an ID number, a mobile number, a card number, by exact length.
        func judgeRun() -> Finding? {
            switch length {
            case 11:
                let prefix = value / 1_000_000_000
                if prefix >= 13 && prefix <= 19 { return .mobileNumber }
            case 13:
                let prefix = value / 1_000_000_000
                if prefix >= 8613 && prefix <= 8619 { return .mobileNumber }
            case 18:
                if Self.isResidentID(digits: value / 10, checkValue: Int(value % 10), weighted: weighted, length: 18) {
                    return .residentID
                }
            default:
                break
            }
            return isBankCard() ? .bankCard : nil
        }

        /// 13–19 digits that a card network issues (its leading digits) with a valid Luhn sum. Runs
        /// starting with 0, 1, 7 or 8 (millisecond and microsecond timestamps, most snowflake ids) never are.
        func isBankCard() -> Bool {
            guard length >= 13 && length <= 19 else { return false }
            var scale: UInt64 = 1
            for _ in 0..<(length - 1) { scale &*= 10 }
            let first = value / scale
            let allowed: Bool
            switch length {
            case 13: allowed = first == 4
            case 14, 15: allowed = first == 3
            case 16: allowed = first >= 2 && first <= 6
            case 17, 18: allowed = first == 5 || first == 6
            default: allowed = first == 4 || first == 6 || first == 9
            }
            guard allowed else { return false }
            let sum = length & 1 == 0 ? luhnEven : luhnOdd
            return sum % 10 == 0
        }

        /// A decimal with 1–3 integer digits and at least 4 fraction digits: half of a pair, or the pair's end.
        mutating func judgeDecimal() -> Finding? {
            guard firstGroupLength >= 1, firstGroupLength <= 3, length >= 4 else {
                decimal = nil
                return nil
            }
            let whole = firstGroupValue
            let zero = !fractionNonZero
            let this = (latitude: whole < 90 || (whole == 90 && zero), longitude: whole < 180 || (whole == 180 && zero),
                        whole: whole >= 1)
            if let last = decimal, (last.latitude && this.longitude) || (last.longitude && this.latitude),
               last.whole || this.whole {
                return .coordinates
            }
            decimal = this
            gap = 0
            return nil
        }

        /// Province code, birth date from 1900 to 2099, and the ISO 7064 MOD 11-2 check character.
        /// `digits` holds the first 17 digits.
        static func isResidentID(digits: UInt64, checkValue: Int, weighted: Int, length: Int) -> Bool {
            guard (12 - weighted % 11) % 11 == checkValue else { return false }
            let province = Int(digits / 1_000_000_000_000_000 % 100)
            switch province {
            case 11...15, 21...23, 31...37, 41...46, 50...54, 61...65, 71, 81...83: break
            default: return false
            }
            let date = Int(digits / 1_000 % 100_000_000)
            let year = date / 10_000, month = date / 100 % 100, day = date % 100
            guard year >= 1900 && year <= 2099, month >= 1 && month <= 12, day >= 1 else { return false }
            let days: Int
            switch month {
            case 2: days = (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
            case 4, 6, 9, 11: days = 30
            default: days = 31
            }
            return day <= days
        }
    }

    /// `local@domain.tld`: a local part, `@`, at least two labels, the last one 2 or more letters.
    /// `name@2x.png` (an image scale suffix) is not an address.
    struct EmailTracker {
        var localLength = 0
        var inDomain = false
        var labelLength = 0
        var labelAlphabetic = true
        var dots = 0
        var scaleSuffix = false
        var labelStartsWithDigit = false

        @inline(__always)
        mutating func feed(_ byte: UInt8) -> Bool {
            if inDomain {
                if PersonalDataDetector.isAlnum(byte) || byte == UInt8(ascii: "-") {
                    if labelLength == 0 { labelStartsWithDigit = PersonalDataDetector.isDigit(byte) }
                    labelLength += 1
                    labelAlphabetic = labelAlphabetic && PersonalDataDetector.isAlpha(byte)
                    if dots == 0 && labelLength == 2 { scaleSuffix = labelStartsWithDigit && byte | 0x20 == UInt8(ascii: "x") }
                    if dots == 0 && labelLength > 2 { scaleSuffix = false }
                    return false
                }
                if byte == UInt8(ascii: "."), labelLength > 0 {
                    if complete { return true }
                    dots += 1
                    labelLength = 0
                    labelAlphabetic = true
                    return false
                }
                if complete { return true }
                inDomain = false
            }
            if byte == UInt8(ascii: "@") {
                if localLength > 0 {
                    inDomain = true
                    labelLength = 0
                    labelAlphabetic = true
                    dots = 0
                    scaleSuffix = false
                }
                localLength = 0
            } else if PersonalDataDetector.isAlnum(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                localLength += 1
            } else {
                localLength = 0
            }
            return false
        }

        var complete: Bool { dots >= 1 && labelLength >= 2 && labelAlphabetic && !scaleSuffix }

        func finish() -> Bool { inDomain && complete }
    }

    /// Hex groups and colons: eight groups, or fewer around one `::` (at least two groups, so `::1`
    /// and `::` pass), not glued to a word. Times (`14:00:00`) and MAC addresses have too few groups.
    struct IPv6Tracker {
        var active = false
        var leftBoundary = true
        var groups = 0
        var groupLength = 0
        var colons = 0
        var colonRun = 0
        var compressed = 0
        var invalid = false
        var startsWithSingleColon = false
        var first: UInt8 = 0

        @inline(__always)
        mutating func feed(_ byte: UInt8, previous: UInt8) -> Bool {
            let hex = PersonalDataDetector.isHex(byte)
            guard hex || byte == UInt8(ascii: ":") else {
                return active ? end(boundary: byte) : false
            }
            if !active {
                active = true
                leftBoundary = !PersonalDataDetector.isAlnum(previous) && previous != UInt8(ascii: ".")
                groups = 0; groupLength = 0; colons = 0; colonRun = 0; compressed = 0; invalid = false
                first = byte
                startsWithSingleColon = false
            }
            if hex {
                if groupLength == 0 { groups += 1 }
                groupLength += 1
                if groupLength > 4 { invalid = true }
                if colonRun == 1 && colons == 1 && first == UInt8(ascii: ":") { startsWithSingleColon = true }
                colonRun = 0
            } else {
                colons += 1
                colonRun += 1
                groupLength = 0
                if colonRun == 2 { compressed += 1 }
                if colonRun > 2 { invalid = true }
            }
            return false
        }

        mutating func end(boundary: UInt8) -> Bool {
            guard active else { return false }
            active = false
            guard leftBoundary, !invalid, colons >= 2, !startsWithSingleColon, colonRun != 1,
                  !PersonalDataDetector.isAlnum(boundary), boundary != UInt8(ascii: ".") else { return false }
            switch compressed {
            case 0: return groups == 8
            case 1: return groups >= 2 && groups <= 7
            default: return false
            }
        }
    }
}

// MARK: - Base64

extension PersonalDataDetector {
    /// Decodes one run of the base64 alphabet (`+/` or `-_`, percent-escapes decoded) at the four
    /// alignments at once, and scans each decoded stream.
    struct Base64Lanes {
        struct Lane {
            var skip: Int
            var accumulator: UInt32 = 0
            var bits = 0
            var scanner = TokenScanner()

            @inline(__always)
            mutating func feed(_ sextet: UInt8) -> Finding? {
                if skip > 0 {
                    skip -= 1
                    return nil
                }
                accumulator = accumulator << 6 | UInt32(sextet)
                bits += 6
                guard bits >= 8 else { return nil }
                bits -= 8
                return scanner.feed(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }

        static func scan(_ run: UnsafeBufferPointer<UInt8>) -> Finding? {
            var lanes = (Lane(skip: 0), Lane(skip: 1), Lane(skip: 2), Lane(skip: 3))
            var index = 0
            while index < run.count {
                guard let sextet = sextet(PersonalDataDetector.decoded(run, &index)) else { break }
                if let found = lanes.0.feed(sextet) ?? lanes.1.feed(sextet) ?? lanes.2.feed(sextet) ?? lanes.3.feed(sextet) {
                    return found
                }
            }
            return lanes.0.scanner.finish() ?? lanes.1.scanner.finish() ?? lanes.2.scanner.finish() ?? lanes.3.scanner.finish()
        }

        @inline(__always)
        static func sextet(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte &- UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte &- UInt8(ascii: "a") &+ 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0") &+ 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): return 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): return 63
            default: return nil
            }
        }
    }
}
