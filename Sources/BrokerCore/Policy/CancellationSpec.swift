/// How a provider tells the broker that a user withdrew their authorization on the
/// provider's side: the notice's signature, what identifies it, where it names the
/// user (and the app, and when), and what the provider expects as an answer.
///
/// ```yaml
/// cancellation:
///   format: rsa_sha256_form                 # a form signed like rsa_sha256_params (the only format so far)
///   public_key: { env: PROVIDER_PUBLIC_KEY }  # the provider's key that signs notices
///   signature_param: sign                   # default sign
///   unsigned: [sign_type]                   # further parameters left out of the signed text
///   match: { msg_method: user.cancelled }   # parameters that must hold these values
///   account: biz_content.user_id            # the provider's id of the user: PARAM or PARAM.JSON_KEY
///   app: { credential_param: app_id, fields: [app_id, biz_content.app_id] }   # must name our app, if present
///   time: { field: biz_content.cancel_time, format: "yyyy-MM-dd HH:mm:ss", time_zone: Asia/Shanghai }
///   reply: success                          # the body the provider expects back
/// ```
/// The broker matches `account` against the `provider_account` a grant was created
/// with (kept only as a keyed fingerprint) and revokes those granted before `time`.
public struct CancellationSpec: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable { case rsaSHA256Form = "rsa_sha256_form" }

    /// A notice field: a form parameter, or a key inside a JSON document a parameter holds.
    public typealias Field = [String]

    public var format: Format
    public var publicKey: SecretReference
    public var signatureParameter: String
    public var unsigned: [String]
    public var match: [String: String]
    public var account: Field
    /// The adapter credential parameter holding our app id, and the notice fields that must equal it.
    public var app: (credentialParameter: String, fields: [Field])?
    /// When the user cancelled: only grants made before it are revoked (a replayed notice cannot reach a later grant).
    public var time: (field: Field, format: String, timeZone: String)
    public var reply: String
    public var line: Int

    public static func == (a: CancellationSpec, b: CancellationSpec) -> Bool {
        a.format == b.format && a.publicKey == b.publicKey && a.signatureParameter == b.signatureParameter
            && a.unsigned == b.unsigned && a.match == b.match && a.account == b.account
            && a.app?.credentialParameter == b.app?.credentialParameter && a.app?.fields == b.app?.fields
            && a.time.field == b.time.field && a.time.format == b.time.format && a.time.timeZone == b.time.timeZone
            && a.reply == b.reply && a.line == b.line
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(format); hasher.combine(publicKey); hasher.combine(match); hasher.combine(account)
    }

    static func field(_ node: YAMLNode, _ what: String) -> Field? {
        guard let text = node.string(what) else { return nil }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard !parts.contains(where: \.isEmpty) else {
            node.error("\(what) must be PARAM or PARAM.KEY")
            return nil
        }
        return parts
    }

    static func decode(_ node: YAMLNode) -> CancellationSpec? {
        guard let object = node.object("cancellation", required: ["format", "public_key", "match", "account", "time", "reply"],
                                       optional: ["signature_param", "unsigned", "app"]) else { return nil }
        var format: Format?
        if let formatNode = object["format"], let text = formatNode.string("cancellation: format") {
            format = Format(rawValue: text)
            if format == nil { formatNode.error("cancellation: format must be rsa_sha256_form, not '\(text)'") }
        }
        let key = object["public_key"].flatMap { SecretReference.decode($0, "cancellation: public_key", allowLiteral: false) }
        var match: [String: String] = [:]
        for pair in object["match"]?.mapping("cancellation: match") ?? [] {
            if let value = pair.value.string("cancellation: match: \(pair.key)") { match[pair.key] = value }
        }
        if match.isEmpty { object["match"]?.error("cancellation: match names at least one parameter and its value") }
        let account = object["account"].flatMap { field($0, "cancellation: account") }
        var app: (String, [Field])?
        if let appNode = object["app"], let appObject = appNode.object("cancellation: app", required: ["credential_param", "fields"]),
           let parameter = appObject["credential_param"]?.string("cancellation: app: credential_param"),
           let fields = appObject["fields"]?.strings("cancellation: app: fields") {
            app = (parameter, fields.map { $0.0.split(separator: ".", maxSplits: 1).map(String.init) })
        }
        var time: (Field, String, String)?
        if let timeNode = object["time"], let timeObject = timeNode.object("cancellation: time", required: ["field", "format", "time_zone"]),
           let field = timeObject["field"].flatMap({ field($0, "cancellation: time: field") }),
           let format = timeObject["format"]?.string("cancellation: time: format"),
           let zone = timeObject["time_zone"]?.string("cancellation: time: time_zone") {
            time = (field, format, zone)
        }
        let reply = object["reply"]?.string("cancellation: reply")
        let signature = object["signature_param"]?.string("cancellation: signature_param") ?? "sign"
        let unsigned = object["unsigned"]?.strings("cancellation: unsigned")?.map(\.0) ?? []
        guard let format, let key, let account, let time, let reply, !match.isEmpty else { return nil }
        return CancellationSpec(format: format, publicKey: key, signatureParameter: signature, unsigned: unsigned, match: match,
                                account: account, app: app, time: time, reply: reply, line: node.line)
    }
}
