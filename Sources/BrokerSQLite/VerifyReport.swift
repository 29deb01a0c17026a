/// What `verify` found: how much it checked, how fast, and the first bad record if any.
public struct VerifyReport: Sendable, Hashable {
    /// Streams checked.
    public var streams: Int64
    /// Records checked (up to and including the first bad one).
    public var records: Int64
    /// The first record that fails a check, in stream order then `seq`; `nil` when the log is intact.
    public var firstBad: BadRecord?
    public var recordsPerSecond: Double
    /// Checkpoints checked (stored and given).
    public var checkpoints = 0
    /// Whether their signatures were checked (a public key was given).
    public var signaturesChecked = false

    public var isIntact: Bool { firstBad == nil }

    public init(streams: Int64, records: Int64, firstBad: BadRecord?, recordsPerSecond: Double) {
        self.streams = streams; self.records = records; self.firstBad = firstBad
        self.recordsPerSecond = recordsPerSecond
    }
}

/// A record that failed verification. For a `seq gap`, `seq` is the missing number.
public struct BadRecord: Sendable, Hashable, CustomStringConvertible {
    /// Why a record failed verification: a stable string.
    public struct Reason: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The stored hash is not SHA-256(prev_hash ‖ body): the body or the hash was altered.
        public static let hashMismatch = Reason(rawValue: "hash mismatch")
        /// `prev_hash` is not the previous record's hash: a record was reordered or replaced.
        public static let prevHashMismatch = Reason(rawValue: "prev_hash mismatch")
        /// A sequence number is missing: a record was removed.
        public static let seqGap = Reason(rawValue: "seq gap")
        /// A queryable column disagrees with the hashed body: the column was altered.
        public static let columnMismatch = Reason(rawValue: "indexed column differs from body")
        /// A signed checkpoint names a record that is not there: records were removed from the end
        /// (truncation) or the database was rolled back to an older copy.
        public static let truncated = Reason(rawValue: "log ends before a signed checkpoint (truncated or rolled back)")
        /// The record a checkpoint names has another hash: the log was rewritten after it was signed.
        public static let checkpointMismatch = Reason(rawValue: "record differs from its signed checkpoint")
        /// A checkpoint's signature does not verify under the log's public key.
        public static let checkpointSignature = Reason(rawValue: "checkpoint signature invalid")
    }

    public var stream: String
    public var seq: Int64
    public var reason: Reason

    public init(stream: String, seq: Int64, reason: Reason) { self.stream = stream; self.seq = seq; self.reason = reason }
    public var description: String { "\(stream)#\(seq): \(reason)" }
}
