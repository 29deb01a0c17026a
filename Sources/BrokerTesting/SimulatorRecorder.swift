import BrokerFields
/// What a simulator has received and the fault it is told to inject.
final class SimulatorRecorder: Sendable {
    struct State {
        var requests: [RecordedRequest] = []
        var tokenRequests: [RecordedRequest] = []
        var fault: SimulatorFault = .none
    }

    let state = Locked(State())
}
