import BrokerService
import BrokerFields
import HTTPTypes
import Hummingbird

extension Problem: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    /// The one place errors become HTTP: RFC 9457 `application/problem+json`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    public func response() -> Response { Response(answer: answer()) }

    /// The problem as a response head and body, for any HTTP layer.
    func answer() -> (HTTPResponse, [UInt8]) {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        if let shareID { headers[.shareID] = shareID }
        // RFC 9110 §15.5.2: a 401 names the scheme it wants.
        if statusCode == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return (HTTPResponse(status: status, headerFields: headers), jsonBody())
    }

    /// The body, written directly with its members in sorted key order (the order clients and tests
    /// have always seen): a refusal no longer goes through `JSONSerialization`, whose sorted keys
    /// cost an ICU collation per comparison (0.4–1.8 M instructions per problem).
    func jsonBody() -> [UInt8] {
        var members: [(String, Member)] = [
            ("type", .string("https://sharebroker.dev/problems/\(code)")),
            ("title", .string(title)),
            ("status", .int(statusCode)),
            ("detail", .string(detail)),
            ("code", .string(code)),
        ]
        if let shareID { members.append(("share_id", .string(shareID))) }
        if !fields.isEmpty {
            members.append(("fields", .objects(fields.map { field in
                var entry: [String: Member] = [
                    "path": .string(field.path), "location": .string(field.location), "reason": .string(field.reason),
                ]
                if let category = field.category { entry["category"] = .string(category) }
                return entry
            })))
            if fieldsTotal > fields.count { members.append(("fields_total", .int(fieldsTotal))) }
        }
        for (name, member) in extra where !members.contains(where: { $0.0 == name }) { members.append((name, member)) }
        var out: [UInt8] = []
        out.reserveCapacity(256 + 96 * fields.count)
        Member.write(object: members, to: &out)
        return out
    }
}

extension Problem.Member {
    /// `{"a":…,"b":…}` with the keys in byte order.
    static func write(object members: [(String, Problem.Member)], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (index, (name, member)) in members.sorted(by: { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.write(name, to: &out)
            out.append(UInt8(ascii: ":"))
            member.write(to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    func write(to out: inout [UInt8]) {
        switch self {
        case .string(let text): JSONText.write(text, to: &out)
        case .int(let number): out.append(contentsOf: String(number).utf8)
        case .objects(let list):
            out.append(UInt8(ascii: "["))
            for (index, object) in list.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.write(object: object.map { ($0.key, $0.value) }, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }
}

extension Response {
    /// A Hummingbird response from a framework-neutral answer.
    init(answer: (HTTPResponse, [UInt8])) {
        self.init(status: answer.0.status, headers: answer.0.headerFields, body: .init(byteBuffer: ByteBuffer(bytes: answer.1)))
    }
}

extension HTTPField.Name {
    static let shareID = HTTPField.Name("X-Share-Id")!
    static let shareDecision = HTTPField.Name("X-Share-Decision")!
    static let shareSubject = HTTPField.Name("X-Share-Subject")!
    static let sharePurpose = HTTPField.Name("X-Share-Purpose")!
}

/// The answers of problems that name no share, no field and no extra member, rendered once per
/// status, code, title and detail. Refusals before logging (a wrong token, an unknown provider, a
/// caller without the provider) repeat the same few, and rendering one cost ~15k instructions;
/// a lookup costs its key's hash. At most `capacity` are kept (a detail may name a provider).
final class RenderedProblems: Sendable {
    private struct Key: Hashable {
        /// The title only when one was given: otherwise it follows from the code.
        var status: Int, code: String, title: String?, detail: String
    }
    private let answers = Locked<[Key: (HTTPResponse, [UInt8])]>([:])
    private let capacity: Int

    init(capacity: Int = 256) { self.capacity = capacity }

    func answer(_ problem: Problem) -> (HTTPResponse, [UInt8]) {
        guard problem.shareID == nil, problem.fields.isEmpty, problem.extra.isEmpty else { return problem.answer() }
        let key = Key(status: problem.statusCode, code: problem.code, title: problem.customTitle, detail: problem.detail)
        if let rendered = answers.withLock({ $0[key] }) { return rendered }
        let rendered = problem.answer()
        answers.withLock { answers in
            if answers.count >= capacity { answers.removeAll(keepingCapacity: true) }
            answers[key] = rendered
        }
        return rendered
    }
}
