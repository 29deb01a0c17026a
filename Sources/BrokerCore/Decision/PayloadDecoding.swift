import BrokerFields

/// Limits on what a caller may send.
public struct BodyLimits: Sendable, Hashable {
    public var maxBytes: Int
    public var maxDepth: Int
    /// Most fields (leaf values) one share may carry in its body, and again in its query.
    public var maxFields: Int
    public init(maxBytes: Int = 1_048_576, maxDepth: Int = 64, maxFields: Int = 2_000) {
        self.maxBytes = maxBytes; self.maxDepth = maxDepth; self.maxFields = maxFields
    }
}

/// Why a body or query string could not be decoded (`malformed_body` or `body_too_large`).
/// The message says what and where, never a value.
public struct PayloadFailure: Error, Sendable, Hashable {
    public var code: ReasonCode
    public var message: String
    public init(code: ReasonCode, message: String) { self.code = code; self.message = message }
}

/// A decoded body or query string that can be re-serialised without some of its fields.
public protocol DecodedPayload: Sendable {
    /// Every value, in document order.
    var fields: [FieldOccurrence] { get }
    /// The broker's own serialisation, with the nodes at `removing` left out and the values at
    /// `replacing` (per path, received value → value to send) replaced.
    func serialized(removing: Set<FieldPath>, replacing: FieldReplacements) -> [UInt8]
}

/// Strict decoding of bodies and query strings, supplied by the payload layer (json-c).
///
/// `schema.isEmbeddedJSON(_:)` tells the decoder which string values hold a JSON
/// document to be parsed and flattened into.
public protocol PayloadDecoder: Sendable {
    func decodeBody(_ bytes: [UInt8], format: BodyFormat, limits: BodyLimits,
                    schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure>
    func decodeQuery(_ query: String, limits: BodyLimits,
                     schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure>
}
