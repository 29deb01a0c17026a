import BrokerCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The privacy center: `GET /privacy` (the page), its script and style sheet, and
/// `GET /v1/privacy/catalog` (the words it shows: providers, purposes, data categories).
///
/// The files ship in the repository (`PrivacyCenter/static`) and are bundled with the binary:
/// no build step, no CDN, no third-party request. Every answer carries a strict
/// Content-Security-Policy (scripts and styles from this origin only, no inline script, no
/// framing unless `privacy_center.frame_ancestors` names the app's origins), `no-referrer` and
/// `no-store`. The page reads the user's token from its URL fragment, which never reaches a server.
struct PrivacyCenterController: Sendable {
    let policy: ActivePolicy
    let homeRegion: String
    /// Origins allowed to frame the page (an app's webview host page); empty: none.
    let frameAncestors: [String]

    static let files: [String: [UInt8]] = {
        var out: [String: [UInt8]] = [:]
        guard let folder = Bundle.module.url(forResource: "static", withExtension: nil) else { return out }
        for name in ["privacy.html", "privacy.css", "privacy.js"] {
            if let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) { out[name] = Array(data) }
        }
        return out
    }()

    func register(on router: Router<BrokerRequestContext>) {
        router.get("/privacy") { request, _ in try page(request) }
        router.get("/privacy/privacy.css") { _, _ in try file("privacy.css", type: "text/css; charset=utf-8") }
        router.get("/privacy/privacy.js") { _, _ in try file("privacy.js", type: "text/javascript; charset=utf-8") }
        router.get("/v1/privacy/catalog") { _, _ in
            let catalog = Self.catalog(policy.current.bundle, homeRegion: homeRegion)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(bytes: catalog)))
        }
    }

    /// `?lang=zh-CN|en`, else the first language of `Accept-Language` the page has, else English.
    static func language(query: String?, acceptLanguage: String?) -> String {
        if let query, query == "en" || query == "zh-CN" { return query }
        for part in (acceptLanguage ?? "").split(separator: ",") {
            let tag = part.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if tag.hasPrefix("zh") { return "zh-CN" }
            if tag.hasPrefix("en") { return "en" }
        }
        return "en"
    }

    func page(_ request: Request) throws -> Response {
        guard let html = Self.files["privacy.html"] else { throw Problem(status: 500, code: "internal_error", detail: "the privacy center is not installed") }
        let language = Self.language(query: request.uri.queryParameters.get("lang"), acceptLanguage: request.headers[.acceptLanguage])
        let text = String(decoding: html, as: UTF8.self).replacingOccurrences(of: "{{lang}}", with: language)
        var response = Response(status: .ok, headers: headers(type: "text/html; charset=utf-8"),
                                body: .init(byteBuffer: ByteBuffer(string: text)))
        response.headers[.contentLanguage] = language
        return response
    }

    func file(_ name: String, type: String) throws -> Response {
        guard let bytes = Self.files[name] else { throw Problem(status: 404, code: "not_found", detail: "no such file") }
        return Response(status: .ok, headers: headers(type: type), body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func headers(type: String) -> HTTPFields {
        var fields = HTTPFields()
        fields[.contentType] = type
        let ancestors = frameAncestors.isEmpty ? "'none'" : frameAncestors.joined(separator: " ")
        fields[.contentSecurityPolicy] = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            + "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors \(ancestors)"
        // X-Frame-Options cannot name several origins: only when nothing may frame the page.
        if frameAncestors.isEmpty { fields[HTTPField.Name("X-Frame-Options")!] = "DENY" }
        fields[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        fields[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        fields[.cacheControl] = "no-store"
        // Over the TLS listener: browsers keep to https for this host from then on.
        if ConnectionIdentity.current?.secure == true { fields[.strictTransportSecurity] = "max-age=31536000" }
        return fields
    }

    /// Providers (the contract's title, the adapter's kind, the contract's region), purposes and
    /// categories with their words in each language: policy metadata, no one's data.
    static func catalog(_ bundle: PolicyBundle, homeRegion: String) -> [UInt8] {
        var providers: [String: Any] = [:]
        for (name, adapter) in bundle.adapters {
            let contract = bundle.contracts[name]
            providers[name] = ["title": contract?.title ?? name, "kind": adapter.kind.rawValue, "region": contract?.region ?? homeRegion,
                               "scopes": contract?.purposes ?? [:]]
        }
        var categories: [String: Any] = [:]
        for (name, info) in bundle.taxonomy.categories where info.personal {
            categories[name] = ["labels": info.labels, "sensitive": info.sensitive]
        }
        let document: [String: Any] = ["providers": providers, "categories": categories,
                                       "purposes": bundle.taxonomy.purposeLabels, "home_region": homeRegion]
        return Array((try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])) ?? Data("{}".utf8))
    }
}
