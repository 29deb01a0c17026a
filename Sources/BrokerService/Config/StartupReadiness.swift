/// Why this process should not receive traffic although its store answers (no client can
/// authenticate), and what it runs with that it should not (demo-looking secrets): `serve` works
/// it out once at start from the config and hands it to the gateway, whose `GET /readyz` reports it.
/// A gateway built without one (tests, the sandbox) depends on its store alone.
public struct StartupReadiness: Sendable, Equatable {
    /// Each makes `/readyz` answer 503 `not_ready`.
    public var reasons: [String]
    /// Shown by a ready `/readyz` as `warnings`.
    public var warnings: [String]

    public init(reasons: [String] = [], warnings: [String] = []) { self.reasons = reasons; self.warnings = warnings }
}
