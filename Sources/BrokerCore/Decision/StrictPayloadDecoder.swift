import BrokerFields
import BrokerPayload

/// The broker's payload decoder: strict JSON (validator + json-c) and form/query codecs.
public struct StrictPayloadDecoder: PayloadDecoder {
    public init() {}

    public func decodeBody(_ bytes: [UInt8], format: BodyFormat, limits: BodyLimits,
                           schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure> {
        let payloadLimits = PayloadLimits(maxBytes: limits.maxBytes, maxDepth: limits.maxDepth, maxFields: limits.maxFields)
        let embedded: (FieldPath) -> Bool = schema.hasEmbeddedJSON ? { schema.isEmbeddedJSON($0) } : { _ in false }
        do {
            switch format {
            case .json: return .success(try JSONBody(bytes, limits: payloadLimits, embeddedJSON: embedded))
            case .form: return .success(try FormBody(bytes, limits: payloadLimits, embeddedJSON: embedded))
            case .none: return .success(EmptyPayload())
            }
        } catch {
            return .failure(PayloadFailure(error))
        }
    }

    public func decodeQuery(_ query: String, limits: BodyLimits,
                            schema: FieldSchema) -> Result<any DecodedPayload, PayloadFailure> {
        let payloadLimits = PayloadLimits(maxBytes: limits.maxBytes, maxDepth: limits.maxDepth, maxFields: limits.maxFields)
        let embedded: (FieldPath) -> Bool = schema.hasEmbeddedJSON ? { schema.isEmbeddedJSON($0) } : { _ in false }
        do {
            return .success(try FormBody(Array(query.utf8), limits: payloadLimits, location: .query, embeddedJSON: embedded))
        } catch {
            return .failure(PayloadFailure(error))
        }
    }
}

extension JSONBody: DecodedPayload {}
extension FormBody: DecodedPayload {}

/// The body of an operation that takes none.
struct EmptyPayload: DecodedPayload {
    var fields: [FieldOccurrence] { [] }
    func serialized(removing: Set<FieldPath>, replacing: FieldReplacements) -> [UInt8] { [] }
}

extension PayloadFailure {
    init(_ error: PayloadError) {
        switch error.code {
        case .bodyTooLarge: self.init(code: .bodyTooLarge, message: error.message)
        case .malformedBody: self.init(code: .malformedBody, message: error.message)
        case .tooManyFields: self.init(code: .tooManyFields, message: error.message)
        }
    }
}
