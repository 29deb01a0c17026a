/// How a provider tells the broker that a user withdrew their authorization there
/// (Alipay's `alipay.open.auth.userauth.cancelled`): the notice's format and
/// signature, and where it names the user.
///
/// ```yaml
/// cancellation:
///   format: alipay_rsa2                         # the only format so far
///   public_key: { env: ALIPAY_PUBLIC_KEY }      # the provider's key that signs notices
///   notice: alipay.open.auth.userauth.cancelled # msg_method (or method) the notice must carry
///   account: biz_content.user_id                # the provider's id of the user in the notice
/// ```
/// The broker matches `account` against the `provider_account` a grant was created
/// with (kept only as a keyed fingerprint) and revokes those grants.
public struct CancellationSpec: Sendable, Hashable {
    public enum Format: String, Sendable, Hashable { case alipayRSA2 = "alipay_rsa2" }

    public var format: Format
    public var publicKey: SecretReference
    public var notice: String
    /// `param` or `param.key` (a key inside a JSON document held by a form parameter).
    public var account: [String]
    public var line: Int

    static func decode(_ node: YAMLNode) -> CancellationSpec? {
        guard let object = node.object("cancellation", required: ["format", "public_key", "notice", "account"]) else { return nil }
        var format: Format?
        if let formatNode = object["format"], let text = formatNode.string("cancellation: format") {
            format = Format(rawValue: text)
            if format == nil { formatNode.error("cancellation: format must be alipay_rsa2, not '\(text)'") }
        }
        let key = object["public_key"].flatMap { SecretReference.decode($0, "cancellation: public_key", allowLiteral: false) }
        let notice = object["notice"]?.string("cancellation: notice")
        var account: [String]?
        if let accountNode = object["account"], let text = accountNode.string("cancellation: account") {
            let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
            if parts.isEmpty || parts.contains(where: \.isEmpty) {
                accountNode.error("cancellation: account must be PARAM or PARAM.KEY")
            } else {
                account = parts
            }
        }
        guard let format, let key, let notice, let account else { return nil }
        return CancellationSpec(format: format, publicKey: key, notice: notice, account: account, line: node.line)
    }
}
