/// A failure a test injects into one provider simulator with
/// `ProviderSimulator.setFault(_:)`.
///
/// Faults apply to API calls only, never to the provider's token or auth call, so a
/// test can make the send fail while the broker still obtains its credential.
/// - `status(n)`: answer HTTP `n` with a body in the provider's error style, without
///   acting (nothing is sent, deleted or issued).
/// - `delay(d)`: sleep `d`, then answer normally (for upstream-timeout tests).
public enum SimulatorFault: Sendable, Equatable {
    case none
    case status(Int)
    case delay(Duration)
    /// Hold API calls without acting on them until the fault is changed, then answer 503:
    /// the provider that never answered (and did nothing).
    case hang
}
