import BrokerCore

/// Why this process should not receive traffic although its store answers (no client can
/// authenticate), and what it runs with that it should not (demo-looking secrets): `serve` sets
/// both once at start from the config, and `GET /readyz` reports them.
///
/// Process-wide, since it describes how the process was started; a gateway built by a test never
/// sets it, so its `/readyz` depends on its store alone.
public enum StartupReadiness {
    public struct State: Sendable, Equatable {
        /// Each makes `/readyz` answer 503 `not_ready`.
        public var reasons: [String] = []
        /// Shown by a ready `/readyz` as `warnings`.
        public var warnings: [String] = []
        public init(reasons: [String] = [], warnings: [String] = []) { self.reasons = reasons; self.warnings = warnings }
    }

    private static let state = Locked(State())

    public static var current: State { state.snapshot }

    public static func set(_ value: State) { state.withLock { $0 = value } }
}
