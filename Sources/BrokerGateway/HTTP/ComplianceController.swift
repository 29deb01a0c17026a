import BrokerCore
import BrokerService
@preconcurrency import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The compliance API (role `compliance`, docs/http-api.md): `GET /v1/shares` with every
/// filter and stable cursor pagination, exports streamed as NDJSON or CSV in
/// constant memory, and `GET /v1/shares/{id}`.
///
/// Answers hold the log's records as stored: paths, categories, actions, reasons
/// and keyed fingerprints, never a value. `fingerprint_of` (with `category`) finds
/// the shares that carried a value: the broker fingerprints it with the log's key
/// and searches for the fingerprint; the value is neither stored nor logged.
struct ComplianceController: Sendable {
    let queries: any ShareQueries
    let subjects: SubjectsController
    let fingerprinter: Fingerprinter
    /// The log's checkpoints and verification, and the key that signs checkpoints.
    let audit: (any LogAudit)?
    let publicKey: Curve25519.Signing.PublicKey?

    static let filterNames: Set<String> = ["subject", "provider", "purpose", "category", "decision", "caller", "since",
                                           "until", "limit", "cursor", "fingerprint_of", "unknown_subject"]
    static let exportPage = 500

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/v1/shares") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            return try await list(request)
        }
        router.get("/v1/shares/:share_id") { request, context in
            _ = try await subjects.requireRole(request, .compliance)
            return try await one(context.parameters.get("share_id") ?? "")
        }
        router.get("/v1/reports/sharing-list") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            return try await sharingList(request)
        }
        router.get("/v1/reports/exposure") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            return try exposure(request)
        }
        router.get("/v1/log/public-key") { _, _ in
            guard let publicKey else { throw Problem(status: 404, code: "not_configured", detail: "checkpoints are not signed") }
            var document: [String: Any] = ["algorithm": "Ed25519", "public_key": Hex.encode(Array(publicKey.rawRepresentation)),
                                           "key_id": CheckpointSigner.keyID(of: publicKey)]
            // Several nodes: every node's key, each signing its own stream.
            let nodes = (try? await audit?.nodeKeys()) ?? []
            if !nodes.isEmpty {
                document["nodes"] = nodes.map { ["stream": $0.stream, "key_id": $0.keyID, "public_key": $0.publicKey] }
            }
            return SubjectsController.json(document)
        }
        router.get("/v1/log/checkpoints") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            return try await checkpoints()
        }
        router.get("/v1/log/verify") { request, _ in
            _ = try await subjects.requireRole(request, .compliance)
            return try await verify()
        }
        router.get("/v1/subjects/:id/shares") { request, context in
            let subject = try SubjectsController.subjectID(context)
            try await subjects.authorize(request, subject: subject)
            return try await history(request, subject: subject)
        }
    }

    /// The third-party sharing list from real traffic, beside what the contracts in force allow.
    /// The query's parameters in order; an unknown name or a name given twice is refused (a
    /// filter given twice could be read either way).
    static func queryParameters(_ request: Request, allowed: Set<String>) throws -> [(name: String, value: String)] {
        var seen = Set<String>()
        var out: [(name: String, value: String)] = []
        for (name, value) in request.uri.queryParameters {
            let name = String(name)
            guard allowed.contains(name) else { throw Problem(status: 400, code: "invalid_query", detail: "unknown parameter \(name)") }
            guard seen.insert(name).inserted else {
                throw Problem(status: 400, code: "invalid_query", detail: "parameter \(name) is given twice")
            }
            out.append((name, String(value)))
        }
        return out
    }

    /// `format=published` gives the regulator's published-list form (`lang=zh-CN|en`) with its drift
    /// against `contracts/published-sharing-list.yaml`; without `format`, the traffic list.
    func sharingList(_ request: Request) async throws -> Response {
        var since: Date?, until: Date?
        var published = false
        var language: PublishedSharingListReport.Language?
        for (name, value) in try Self.queryParameters(request, allowed: ["since", "until", "format", "lang"]) {
            switch name {
            case "format":
                guard value == "published" else {
                    throw Problem(status: 400, code: "invalid_query",
                                  detail: "format is published (the regulator's published-list form), or absent for the traffic list")
                }
                published = true
            case "lang":
                guard let parsed = PublishedSharingListReport.Language(rawValue: value) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "lang is zh-CN or en")
                }
                language = parsed
            default:
                guard let time = Self.parseTime(value) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "\(name) must be an RFC 3339 time")
                }
                if name == "since" { since = time } else { until = time }
            }
        }
        if language != nil && !published {
            throw Problem(status: 400, code: "invalid_query", detail: "lang goes with format=published")
        }
        let rows: [SharingListRow]
        do { rows = try await queries.sharingList(since: since, until: until) } catch { throw Problem.logUnavailable(error.message) }
        let accept = request.headers[.accept]?.lowercased() ?? ""
        if published {
            let report = PublishedSharingListReport.build(rows, bundle: subjects.bundle, language: language ?? .zhCN,
                                                          since: since, until: until, now: subjects.now())
            // Accept: text/csv → CSV, else text/html → HTML, else JSON (the traffic list: text/csv → CSV, else JSON).
            let format: PublishedSharingListReport.Format = accept.contains("text/csv") ? .csv : (accept.contains("text/html") ? .html : .json)
            var headers = HTTPFields()
            headers[.contentType] = PublishedSharingListReport.contentType(format)
            if format == .html {
                // A page of words and links only: no script, no framing, no referrer to the parties' sites.
                headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                    + "form-action 'none'; frame-ancestors 'none'"
                headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
                headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
            }
            return Response(status: .ok, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: PublishedSharingListReport.render(report, format: format))))
        }
        let entries = SharingList.build(rows, bundle: subjects.bundle, at: until ?? Date())
        if accept.contains("text/csv") {
            var text = SharingList.csvHeader + "\r\n"
            for entry in entries { text += Self.csvLine(entry) }
            var headers = HTTPFields()
            headers[.contentType] = "text/csv; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        var out: [String: Any] = ["rows": entries.map(Self.render)]
        out["since"] = since.map { SubjectsController.iso.string(from: $0) } ?? NSNull()
        out["until"] = until.map { SubjectsController.iso.string(from: $0) } ?? NSNull()
        out["drift"] = entries.filter(\.drift).count
        return SubjectsController.json(out)
    }

    /// `GET /v1/reports/exposure?provider=P&since=&until=&category=`: whose personal data P
    /// received in the window (the people to notify after P's security incident), streamed.
    func exposure(_ request: Request) throws -> Response {
        var values: [String: String] = [:]
        for (name, value) in try Self.queryParameters(request, allowed: ["provider", "since", "until", "category"]) {
            values[name] = value
        }
        guard let provider = values["provider"], !provider.isEmpty else {
            throw Problem(status: 400, code: "invalid_query", detail: "provider is required")
        }
        var query = ExposureQuery(provider: provider)
        for name in ["since", "until"] {
            guard let text = values[name] else { continue }
            guard let time = Self.parseTime(text) else {
                throw Problem(status: 400, code: "invalid_query", detail: "\(name) must be an RFC 3339 time")
            }
            if name == "since" { query.since = time } else { query.until = time }
        }
        if let category = values["category"] {
            // A category of the taxonomy, or a parent of some (`user.device` covers `user.device.push_token`).
            let covered = subjects.bundle.taxonomy.categories.filter { $0.key == category || $0.key.hasPrefix(category + ".") }
            guard covered.values.contains(where: \.personal) else {
                throw Problem(status: 400, code: "invalid_query", detail: "category \(category) names no personal category of the taxonomy")
            }
            query.category = category
        }
        let accept = request.headers[.accept]?.lowercased() ?? ""
        let format: ExposureReport.Format = accept.contains("text/csv") ? .csv : (accept.contains("application/x-ndjson") ? .ndjson : .json)
        let queries = self.queries, report = query
        let body = ResponseBody { writer in
            try await ExposureReport.stream(queries, report, format: format) { try await writer.write(ByteBuffer(string: $0)) }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = format == .csv ? "text/csv; charset=utf-8" : (format == .ndjson ? "application/x-ndjson" : "application/json")
        return Response(status: .ok, headers: headers, body: body)
    }

    static func render(_ entry: SharingList.Entry) -> [String: Any] {
        [
            "provider": entry.row.provider, "purpose": entry.row.purpose, "category": entry.row.category,
            "sent": entry.row.sent, "minimised": entry.row.minimised, "stripped": entry.row.stripped, "blocked": entry.row.blocked,
            "subjects": entry.row.subjects, "first_seen": SubjectsController.iso.string(from: entry.row.firstSeen),
            "last_seen": SubjectsController.iso.string(from: entry.row.lastSeen),
            "allowed_by_contract": entry.allowedByContract, "drift": entry.drift,
        ]
    }

    static func csvLine(_ entry: SharingList.Entry) -> String {
        [entry.row.provider, entry.row.purpose, entry.row.category, String(entry.row.sent), String(entry.row.stripped),
         String(entry.row.blocked), String(entry.row.subjects), SubjectsController.iso.string(from: entry.row.firstSeen),
         SubjectsController.iso.string(from: entry.row.lastSeen), String(entry.allowedByContract), String(entry.drift)]
            .map(CSVCell.escape).joined(separator: ",") + "\r\n"
    }

    func checkpoints() async throws -> Response {
        guard let audit else { throw Problem(status: 404, code: "not_configured", detail: "the log has no checkpoints") }
        let list: [Checkpoint]
        do { list = try await audit.checkpoints() } catch { throw Problem.logUnavailable(error.message) }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers,
                        body: .init(byteBuffer: ByteBuffer(data: CheckpointDocument(publicKey: publicKey, checkpoints: list, nodes: (try? await audit.nodeKeys()) ?? []).encoded())))
    }

    func verify() async throws -> Response {
        guard let audit else { throw Problem(status: 404, code: "not_configured", detail: "the log cannot be verified here") }
        let result: LogVerification
        do { result = try await audit.verifyLog(publicKey: publicKey) } catch { throw Problem.logUnavailable(error.message) }
        return SubjectsController.json([
            "intact": result.firstBad == nil, "records": result.records, "streams": result.streams,
            "checkpoints": result.checkpoints, "first_bad": result.firstBad ?? NSNull(),
            "records_per_second": Int(result.recordsPerSecond), "signatures_checked": publicKey != nil,
        ])
    }

    /// What was shared about one subject (for the subject themselves, or a `grants` client):
    /// provider, purpose, decision, the categories sent and the outcome; no values, paths or fingerprints.
    func history(_ request: Request, subject: String) async throws -> Response {
        var cursor: ShareCursor?
        var limit = 100
        var filter = ShareFilter(subject: subject)
        for (name, value) in try Self.queryParameters(request, allowed: ["order", "cursor", "limit"]) {
            switch name {
            case "order":
                guard value == "newest" || value == "oldest" else {
                    throw Problem(status: 400, code: "invalid_query", detail: "order is newest or oldest")
                }
                filter.newestFirst = value == "newest"
            case "cursor":
                guard let parsed = ShareCursor(token: value) else {
                    throw Problem(status: 400, code: "invalid_cursor", detail: "the cursor is not one this API returned")
                }
                cursor = parsed
            case "limit":
                guard let number = Int(value), (1...1000).contains(number) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "limit is 1 to 1000")
                }
                limit = number
            default:
                break
            }
        }
        let page: [LoggedShare]
        do { page = try await queries.shares(filter, after: cursor, limit: limit) } catch {
            throw Problem.logUnavailable(error.message)
        }
        let items = page.map { share -> [String: Any] in
            let record = ShareCSV.object(share.record)
            let outcome = share.outcome.map(ShareCSV.object)
            let fields = record["fields"] as? [[String: Any]] ?? []
            let sent = Set(fields.filter { ShareCSV.wasSent($0) && ShareCSV.isPersonal($0) }
                .compactMap { $0["category"] as? String })
            var item: [String: Any] = [
                "share_id": record["share_id"] ?? NSNull(), "provider": record["provider"] ?? NSNull(),
                "purpose": record["purpose"] ?? NSNull(), "decision": record["decision"] ?? NSNull(),
                "categories_sent": sent.sorted(), "outcome": outcome?["result"] ?? NSNull(),
            ]
            if let time = ShareCSV.time(record) { item["time"] = time }
            return item
        }
        var out: [String: Any] = ["subject": subject, "shares": items]
        if page.count == limit, let last = page.last {
            out["next_cursor"] = ShareCursor(stream: last.position.stream, seq: last.position.seq).token
        }
        return SubjectsController.json(out)
    }

    func one(_ id: String) async throws -> Response {
        let found: LoggedShare?
        do { found = try await queries.share(id: id) } catch { throw Problem.logUnavailable(error.message) }
        guard let found else { throw Problem(status: 404, code: "share_not_found", detail: "no share with this id") }
        return Self.jsonText(found.json)
    }

    /// Parses the query string into a filter, refusing unknown or malformed parameters.
    func filter(_ request: Request) throws -> (ShareFilter, ShareCursor?, Int) {
        var filter = ShareFilter()
        var cursor: ShareCursor?
        var limit = 100
        var fingerprintOf: String?
        for (name, value) in try Self.queryParameters(request, allowed: Self.filterNames) {
            switch name {
            case "subject":
                guard filter.subject == nil else {
                    throw Problem(status: 400, code: "invalid_query", detail: "give subject or unknown_subject, not both")
                }
                filter.subject = value
            case "provider": filter.provider = value
            case "purpose": filter.purpose = value
            case "category": filter.category = value
            case "caller": filter.caller = value
            case "decision":
                guard ["allowed", "redacted", "blocked"].contains(value) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "decision is allowed, redacted or blocked")
                }
                filter.decision = value
            case "since", "until":
                guard let time = Self.parseTime(value) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "\(name) must be an RFC 3339 time")
                }
                if name == "since" { filter.since = time } else { filter.until = time }
            case "limit":
                guard let number = Int(value), (1...1000).contains(number) else {
                    throw Problem(status: 400, code: "invalid_query", detail: "limit is 1 to 1000")
                }
                limit = number
            case "cursor":
                guard let parsed = ShareCursor(token: value) else {
                    throw Problem(status: 400, code: "invalid_cursor", detail: "the cursor is not one this API returned")
                }
                cursor = parsed
            case "fingerprint_of": fingerprintOf = value
            case "unknown_subject":
                // Refused shares about an id the broker did not know are logged under its keyed marker only.
                guard filter.subject == nil else {
                    throw Problem(status: 400, code: "invalid_query", detail: "give subject or unknown_subject, not both")
                }
                filter.subject = fingerprinter.unknownSubjectMarker(value)
            default: break
            }
        }
        if let fingerprintOf {
            guard let category = filter.category else {
                throw Problem(status: 400, code: "category_required",
                              detail: "fingerprint_of needs the category the value was shared as")
            }
            filter.carrying(fingerprintOf, category: category, printer: fingerprinter)
        }
        return (filter, cursor, limit)
    }

    func list(_ request: Request) async throws -> Response {
        let (filter, cursor, limit) = try filter(request)
        let accept = request.headers[.accept]?.lowercased() ?? ""
        if accept.contains("application/x-ndjson") { return export(filter, after: cursor, format: .ndjson) }
        if accept.contains("text/csv") { return export(filter, after: cursor, format: .csv) }
        let page: [LoggedShare]
        do { page = try await queries.shares(filter, after: cursor, limit: limit) } catch {
            throw Problem.logUnavailable(error.message)
        }
        var out = #"{"next_cursor":"#
        out += page.count == limit ? JSONText.quoted(ShareCursor(stream: page.last!.position.stream, seq: page.last!.position.seq).token) : "null"
        out += #","shares":["#
        out += page.map(\.json).joined(separator: ",")
        return Self.jsonText(out + "]}")
    }

    enum ExportFormat { case ndjson, csv }

    /// Every match, streamed page by page (constant memory whatever the size).
    func export(_ filter: ShareFilter, after start: ShareCursor?, format: ExportFormat) -> Response {
        let queries = self.queries
        let body = ResponseBody { writer in
            if format == .csv { try await writer.write(ByteBuffer(string: ShareCSV.header)) }
            var cursor = start
            while true {
                let page = try await queries.shares(filter, after: cursor, limit: Self.exportPage)
                guard let last = page.last else { break }
                var chunk = ""
                for share in page {
                    chunk += format == .csv ? ShareCSV.row(share) : share.json + "\n"
                }
                try await writer.write(ByteBuffer(string: chunk))
                if page.count < Self.exportPage { break }
                cursor = ShareCursor(stream: last.position.stream, seq: last.position.seq)
            }
            try await writer.finish(nil)
        }
        var headers = HTTPFields()
        headers[.contentType] = format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson"
        return Response(status: .ok, headers: headers, body: body)
    }

    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static func jsonText(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The CSV form of a share: one row per share, values from its record (no personal value is in it).
enum ShareCSV {
    static let columns = ["share_id", "time", "stream", "seq", "caller", "channel", "provider", "operation", "purpose",
                          "subject", "decision", "code", "categories_sent", "fields_sent", "fields_stripped", "fields_blocked",
                          "grant_ids", "contract_version", "outcome", "upstream_status"]
    static let header = columns.joined(separator: ",") + "\r\n"

    /// A stored record as a dictionary (empty if it does not parse).
    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// The record's `time_us` as RFC 3339.
    static func time(_ record: [String: Any]) -> String? {
        (record["time_us"] as? NSNumber).map {
            SubjectsController.iso.string(from: Date(timeIntervalSince1970: TimeInterval($0.int64Value) / 1_000_000))
        }
    }

    /// A logged field the provider received: sent as it came, or minimised.
    static func wasSent(_ field: [String: Any]) -> Bool {
        (field["action"] as? String).flatMap(FieldAction.init(rawValue:))?.isSent ?? false
    }

    /// A logged field of a personal value: it carries a fingerprint, or (folded) its values' short prints.
    static func isPersonal(_ field: [String: Any]) -> Bool {
        field["fingerprint"] as? String != nil || field["fingerprints"] as? [Any] != nil
    }

    /// The field occurrences a logged entry stands for: its `count` when folded, else 1.
    static func occurrences(_ field: [String: Any]) -> Int { (field["count"] as? NSNumber)?.intValue ?? 1 }

    static func row(_ share: LoggedShare) -> String {
        let record = object(share.record)
        let outcome = share.outcome.map(object)
        let fields = record["fields"] as? [[String: Any]] ?? []
        func total(_ fields: [[String: Any]]) -> String { String(fields.reduce(0) { $0 + occurrences($1) }) }
        func count(_ action: String) -> String { total(fields.filter { $0["action"] as? String == action }) }
        let sentCategories = Set(fields.filter(wasSent).compactMap { $0["category"] as? String })
        let time = Self.time(record)
        let values: [String?] = [
            record["share_id"] as? String, time, share.position.stream, String(share.position.seq),
            record["caller"] as? String, record["channel"] as? String, record["provider"] as? String,
            record["operation"] as? String, record["purpose"] as? String, record["subject"] as? String,
            record["decision"] as? String, record["code"] as? String, sentCategories.sorted().joined(separator: ";"),
            total(fields.filter(wasSent)), count("stripped"), count("blocked"),
            (record["grant_ids"] as? [String] ?? []).joined(separator: ";"), record["contract_version"] as? String,
            outcome?["result"] as? String, (outcome?["upstream_status"] as? NSNumber)?.stringValue,
        ]
        return values.map { CSVCell.escape($0 ?? "") }.joined(separator: ",") + "\r\n"
    }
}
