import BrokerService
import Foundation
import HTTPTypes
import Hummingbird

extension Problem: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: statusCode) }

    /// The one place errors become HTTP: RFC 9457 `application/problem+json`.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    public func response() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        if let shareID { headers[.shareID] = shareID }
        // RFC 9110 §15.5.2: a 401 names the scheme it wants.
        if statusCode == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: jsonBody())))
    }

    func jsonBody() -> [UInt8] {
        var object: [String: Any] = [
            "type": "https://sharebroker.dev/problems/\(code)",
            "title": title,
            "status": statusCode,
            "detail": detail,
            "code": code,
        ]
        if let shareID { object["share_id"] = shareID }
        if !fields.isEmpty {
            object["fields"] = fields.map { field -> [String: Any] in
                var entry: [String: Any] = ["path": field.path, "location": field.location, "reason": field.reason]
                if let category = field.category { entry["category"] = category }
                return entry
            }
            if fieldsTotal > fields.count { object["fields_total"] = fieldsTotal }
        }
        for (name, member) in extra where object[name] == nil { object[name] = member.json }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Array(data)
    }
}

extension HTTPField.Name {
    static let shareID = HTTPField.Name("X-Share-Id")!
    static let shareDecision = HTTPField.Name("X-Share-Decision")!
    static let shareSubject = HTTPField.Name("X-Share-Subject")!
    static let sharePurpose = HTTPField.Name("X-Share-Purpose")!
}
